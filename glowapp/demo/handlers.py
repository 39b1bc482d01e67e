"""What each tab of the web demo computes, from form values to display images (no Gradio here).

Every operation is :mod:`glowapp.generate`'s; this module checks the form values, reads uploads
with :func:`glowapp.data.load_image` (the CLI tools' loader) and enlarges the small results for
the screen. A :class:`Demo` holds only the loaded model, which every request shares read-only:
the module stays in eval mode with gradients off for its parameters, and each request keeps
its noise, images and results in local variables (seeded ``torch.Generator`` s inside
:mod:`glowapp.generate`), so concurrent requests cannot mix their results. No lock is needed:
nothing writes to the module (the 1x1 convolutions' cached inverses are keyed by parameter
versions and replaced whole), which ``tests/test_demo.py`` checks with concurrent requests.
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

from glowapp.data.images import (
    ImageLoadError,
    LoadedImage,
    fit_image,
    load_image,
    open_image,
    pil_to_tensor,
)
from glowapp.generate import (
    INTERPOLATION_MODES,
    MASK_KINDS,
    inpaint,
    inpainting_rows,
    interpolate,
    log_prob_to_bits_per_dim,
    make_mask,
    sample_grid,
    score,
    tile,
)
from glowapp.module import GlowModule

__all__ = [
    "DISPLAY_SIDE",
    "MAX_ITERATIONS",
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
"""Most inpainting steps one request may run."""
MAX_SCORED = 64
"""Most images one request may score."""
DISPLAY_SIDE = 112
"""Results are enlarged (nearest neighbour, integer factor) towards this many pixels per image."""
DRAWN_COVERAGE = 0.25
"""Share of a model pixel that must be painted for it to count as hidden."""


class DemoInputError(ValueError):
    """A form value or upload the demo cannot use; the message is shown to the user as is."""


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


def _number(name: str, value: float | None, low: float, high: float) -> float:
    if value is None or not low <= value <= high:  # NaN fails the comparison too
        raise DemoInputError(f"{name} must be between {low} and {high}, got {value}")
    return float(value)


def _integer(name: str, value: float | None, low: int, high: int) -> int:
    if value is not None and not float(value).is_integer():
        raise DemoInputError(f"{name} must be a whole number, got {value}")
    return int(_number(name, value, low, high))


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
        temperature = _number("temperature", temperature, 0.0, MAX_TEMPERATURE)
        num = _integer("number of images", num, 1, MAX_SAMPLES)
        seed = _integer("seed", seed, 0, 2**32 - 1)
        ncol = math.ceil(math.sqrt(num))
        return self._display(sample_grid(self.module, [temperature], num, seed), ncol)

    def interpolate(
        self, start: Upload | None, end: Upload | None, steps: float, mode: str
    ) -> Image.Image:
        """The row of ``steps`` images along the latent path from ``start`` to ``end``."""
        if start is None or end is None:
            raise DemoInputError("upload two images (or pick an example pair) to interpolate")
        steps = _integer("steps", steps, 2, MAX_STEPS)
        if mode not in INTERPOLATION_MODES:
            raise DemoInputError(
                f"mode must be one of {', '.join(INTERPOLATION_MODES)}, got {mode!r}"
            )
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
        """Fill the region painted on ``layers`` (else the ``preset`` mask) of ``image``."""
        if image is None:
            raise DemoInputError("upload an image (or pick an example) to inpaint")
        iterations = _integer("iterations", iterations, 0, MAX_ITERATIONS)
        size = self.image_shape[1:]
        masks = [mask for mask in (drawn_mask(layer, size) for layer in layers) if mask is not None]
        if masks:
            mask = torch.stack(masks).any(dim=0)
        elif preset in MASK_KINDS:
            mask = make_mask(preset, size)
        else:
            raise DemoInputError(
                f"paint the region to fill, or choose a preset mask ({', '.join(MASK_KINDS)})"
            )
        if not mask.any():
            raise DemoInputError("the mask hides no pixel at the model's resolution; paint more")
        images = read_upload(image, self.image_shape).image[None]
        result = inpaint(self.module, images, mask, iterations=iterations, progress=progress)
        before, after = log_prob_to_bits_per_dim(self.module, result.log_prob[[0, -1], 0]).tolist()
        masked, completion, original = (
            self._display([row], 1) for row in inpainting_rows(images, mask, result)
        )
        summary = (
            f"{int(mask.sum())} of {mask.numel()} pixels filled in {iterations} iterations; "
            f"{before:.3f} → {after:.3f} bits/dim"
        )
        return Inpainted(masked, completion, original, summary)

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
