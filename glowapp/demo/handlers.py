"""What each tab of the web demo computes, from form values to display images (no Gradio here).

Every operation is :mod:`glowapp.generate`'s, and so is every check of a value it takes: a bad
temperature, count or step number raises that function's ``ValueError``, which the page shows
as it is. This module adds only what is the demo's own: whole-number form fields, the caps that
keep one request of a public page small (:data:`MAX_SAMPLES`, :data:`MAX_STEPS`, …), reading
uploads with :func:`glowapp.images.load_image` (the CLI tools' loader) under their user-facing
names, and enlarging the small results for the screen. A :class:`Demo` holds only the loaded
model, which every request shares read-only: the module stays in eval mode with gradients off
for its parameters, and each request keeps its noise, images and results in local variables
(seeded ``torch.Generator`` s inside :mod:`glowapp.generate`), so concurrent requests cannot mix
their results. No lock is needed: nothing writes to the module (the 1x1 convolutions' cached
inverses are keyed by parameter versions and replaced whole), which ``tests/demo/`` checks with
concurrent requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.functional import to_pil_image

from glowapp.generate import (
    inpaint,
    interpolate,
    latent_direction,
    log_prob_to_bits_per_dim,
    make_mask,
    manipulate,
    sample_grid,
    score,
)
from glowapp.images import (
    ImageLoadError,
    LoadedImage,
    fit_image,
    inpainting_rows,
    load_image,
    open_image,
    pil_to_tensor,
    tile,
)
from glowapp.module import GlowModule

__all__ = [
    "DISPLAY_SIDE",
    "MAX_ALPHA",
    "MAX_ITERATIONS",
    "MANIPULATION_STEPS",
    "MAX_SET",
    "MAX_SAMPLES",
    "MAX_SCORED",
    "MAX_STEPS",
    "MAX_TEMPERATURE",
    "MAX_UPLOAD_BYTES",
    "Demo",
    "DemoInputError",
    "Inpainted",
    "Score",
    "Upload",
    "drawn_mask",
    "read_upload",
]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""Largest accepted upload (10 MiB); Gradio refuses bigger files before they are stored."""
MAX_SAMPLES = 64
"""Most samples one request may draw."""
MAX_TEMPERATURE = 1.5
"""Highest sampling temperature offered."""
MAX_STEPS = 16
"""Most images in an interpolation row."""
MAX_ITERATIONS = 2000
"""Highest inpainting iteration limit one request may set."""
MAX_SCORED = 64
"""Most images one request may score."""
MAX_SET = 64
"""Most images in each set that gives a manipulation direction."""
MAX_ALPHA = 3.0
"""Largest step (either way) along a manipulation direction."""
MANIPULATION_STEPS = 5
"""Images in a manipulation row: α·0, α·¼, …, α."""
DISPLAY_SIDE = 112
"""Results are enlarged (nearest neighbour, integer factor) towards this many pixels per image."""
DRAWN_COVERAGE = 0.25
"""Share of a model pixel that must be painted for it to count as hidden."""


class DemoInputError(ValueError):
    """A form value or upload the demo itself cannot use (a missing upload, a value over a cap);
    shown to the user as is, like the ``ValueError`` s of :mod:`glowapp.generate`."""


class Upload(NamedTuple):
    """An uploaded file: where the server stored it and the name the user knows it by."""

    path: Path
    name: str


@dataclass(frozen=True)
class Inpainted:
    """What :meth:`Demo.inpaint` returns: three display images and a one-line summary."""

    masked: Image.Image
    """The model's view of the input with hidden pixels painted magenta."""
    completion: Image.Image
    original: Image.Image
    """The input as the model sees it: the ground truth of the hidden pixels."""
    summary: str


class Score(NamedTuple):
    """One row of the Score tab."""

    name: str
    bits_per_dim: float
    preprocessing: str


def _number(name: str, value: float | None, cap: float | None = None) -> float:
    """A form's number, at most ``cap`` (the demo's limit per request); the range the
    operation accepts is checked by the operation."""
    if value is None:
        raise DemoInputError(f"{name}: enter a number")
    if cap is not None and value > cap:
        raise DemoInputError(f"{name} must be at most {cap} in this demo, got {value}")
    return float(value)


def _whole(name: str, value: float | None, cap: int | None = None) -> int:
    """A form's whole number (Gradio sends floats), at most ``cap``."""
    number = _number(name, value, cap)
    if not number.is_integer():
        raise DemoInputError(f"{name} must be a whole number, got {value}")
    return int(number)


def read_upload(upload: Upload, image_shape: tuple[int, int, int]) -> LoadedImage:
    """Load an upload as the model's uint8 ``[C, H, W]``; errors name the file as the user does.

    Raises:
        DemoInputError: the file is over :data:`MAX_UPLOAD_BYTES`, or not a readable image.
    """
    size = upload.path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise DemoInputError(
            f"{upload.name}: {size / 2**20:.1f} MiB is over the upload limit of "
            f"{MAX_UPLOAD_BYTES / 2**20:.0f} MiB; use a smaller image"
        )
    try:
        return load_image(upload.path, image_shape)
    except ImageLoadError as err:
        raise DemoInputError(str(err).replace(str(upload.path), upload.name)) from None


def drawn_mask(layer: Path, size: tuple[int, int]) -> Tensor | None:
    """The hidden pixels ``[H, W]`` painted on an editor layer (its alpha), or None if blank.

    The layer is resized and center-cropped like its image (:func:`fit_image`), and a model
    pixel is hidden when at least :data:`DRAWN_COVERAGE` of it is painted.
    """
    alpha = open_image(layer).convert("RGBA").getchannel("A")
    if alpha.getbbox() is None:
        return None
    coverage = pil_to_tensor(fit_image(alpha, size))[0]
    return coverage >= round(255 * DRAWN_COVERAGE)


@dataclass(frozen=True)
class Demo:
    """The demo's operations on one loaded model (shared by all requests, never modified)."""

    module: GlowModule

    def __post_init__(self) -> None:
        # Inpainting differentiates w.r.t. the image only; parameters need no graph.
        self.module.eval().requires_grad_(False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The model's ``(C, H, W)``."""
        return self.module.image_shape

    @property
    def description(self) -> str:
        """The model in one phrase: its flow class with that class's own arguments (from the
        checkpoint's flow spec) and the image shape, e.g.
        ``"NICE (couplings=4, hidden=128, blocks=0, num_classes=0) on 1×28×28 images"``."""
        spec = self.module.hparams["flow"]
        arguments = ", ".join(
            f"{name}={value}"
            for name, value in spec["init_args"].items()
            if name not in ("in_channels", "image_size")
        )
        name = spec["class_path"].rpartition(".")[2]
        return f"{name} ({arguments}) on {'×'.join(map(str, self.image_shape))} images"

    def _display(self, images: Sequence[Tensor], ncol: int) -> Image.Image:
        """:func:`tile` the row blocks, enlarged by an integer factor for the screen."""
        grid = to_pil_image(tile(images, ncol))
        factor = max(1, DISPLAY_SIDE // self.image_shape[1])
        return grid.resize((grid.width * factor, grid.height * factor), Image.Resampling.NEAREST)

    def model_view(self, image: Upload) -> Image.Image:
        """``image`` as the model sees it (its channels and resolution): the canvas to paint on."""
        return to_pil_image(read_upload(image, self.image_shape).image)

    def sample(self, temperature: float | None, num: float, seed: float | None) -> Image.Image:
        """``num`` samples at ``temperature`` from ``seed``, as a grid ⌈√num⌉ images wide."""
        temperature = _number("temperature", temperature, MAX_TEMPERATURE)
        num = _whole("number of images", num, MAX_SAMPLES)
        samples = sample_grid(self.module, [temperature], num, _whole("seed", seed))
        return self._display(samples, math.ceil(math.sqrt(num)))

    def interpolate(
        self, start: Upload | None, end: Upload | None, steps: float, mode: str
    ) -> Image.Image:
        """The row of ``steps`` images along the latent path from ``start`` to ``end``."""
        if start is None or end is None:
            raise DemoInputError("upload two images (or pick an example pair) to interpolate")
        steps = _whole("steps", steps, MAX_STEPS)
        a, b = (read_upload(upload, self.image_shape).image[None] for upload in (start, end))
        return self._display(interpolate(self.module, a, b, steps=steps, mode=mode), steps)

    def inpaint(
        self,
        image: Upload | None,
        layers: Sequence[Path],
        preset: str,
        iterations: float,
        progress: Callable[[int], None] | None = None,
    ) -> Inpainted:
        """Fill the region painted on ``layers`` (else the ``preset`` mask) of ``image``, in at
        most ``iterations`` iterations; ``progress`` gets the iteration number after each."""
        if image is None:
            raise DemoInputError("upload an image (or pick an example) to inpaint")
        iterations = _whole("iterations", iterations, MAX_ITERATIONS)
        size = self.image_shape[1:]
        masks = [mask for mask in (drawn_mask(layer, size) for layer in layers) if mask is not None]
        mask = torch.stack(masks).any(dim=0) if masks else make_mask(preset, size)
        if not mask.any():
            raise DemoInputError("the mask hides no pixel at the model's resolution; paint more")
        images = read_upload(image, self.image_shape).image[None]
        result = inpaint(self.module, images, mask, iterations=iterations, progress=progress)
        before, after = log_prob_to_bits_per_dim(self.module, result.log_prob[[0, -1], 0]).tolist()
        masked, completion, original = (
            self._display([row], 1) for row in inpainting_rows(images, mask, result)
        )
        summary = (
            f"{int(mask.sum())} of {mask.numel()} pixels filled in {result.iterations} iterations; "
            f"{before:.3f} → {after:.3f} bits/dim"
        )
        return Inpainted(masked, completion, original, summary)

    def manipulate(
        self,
        image: Upload | None,
        positive: Sequence[Upload],
        negative: Sequence[Upload],
        alpha: float | None,
    ) -> Image.Image:
        """``image`` moved along the direction from the ``negative`` to the ``positive`` uploads:
        a row of :data:`MANIPULATION_STEPS` images at ``α·0`` (the input), …, ``α``."""
        if image is None:
            raise DemoInputError("upload an image (or pick an example) to manipulate")
        alpha = _number("alpha", alpha, MAX_ALPHA)
        if alpha < -MAX_ALPHA:
            raise DemoInputError(f"alpha must be at least {-MAX_ALPHA} in this demo, got {alpha}")
        for name, uploads in (("positive", positive), ("negative", negative)):
            if len(uploads) > MAX_SET:
                raise DemoInputError(
                    f"the {name} set holds at most {MAX_SET} images here, got {len(uploads)}"
                )
        sets = [
            torch.stack([read_upload(u, self.image_shape).image for u in uploads])
            if uploads
            else torch.empty(0, *self.image_shape, dtype=torch.uint8)
            for uploads in (positive, negative)
        ]
        direction = latent_direction(self.module, *sets)
        images = read_upload(image, self.image_shape).image[None]
        alphas = torch.linspace(0.0, alpha, MANIPULATION_STEPS).tolist()
        return self._display(manipulate(self.module, images, direction, alphas), len(alphas))

    def score(self, uploads: Sequence[Upload]) -> list[Score]:
        """Bits/dim of each upload at the bin centres (lower = more likely under the model)."""
        if not uploads:
            raise DemoInputError("upload one or more images to score")
        if len(uploads) > MAX_SCORED:
            raise DemoInputError(f"score at most {MAX_SCORED} images at a time, got {len(uploads)}")
        loaded = [read_upload(upload, self.image_shape) for upload in uploads]
        bpd = score(self.module, torch.stack([image.image for image in loaded]))
        return [
            Score(upload.name, round(value, 4), image.description)
            for upload, image, value in zip(uploads, loaded, bpd.tolist(), strict=True)
        ]
