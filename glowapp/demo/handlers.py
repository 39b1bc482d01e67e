"""What each tab of the web demo computes, from form values to display images (no Gradio here).

Every operation is :mod:`glowapp.generate`'s, and so is every check of a value it takes: a bad
temperature, count or step number raises that function's ``ValueError``, which the page shows
as it is. This module adds only what is the demo's own: whole-number form fields, the caps that
keep one request of a public page small (:data:`MAX_SAMPLES`, :data:`MAX_STEPS`, …), reading
uploads with :func:`glowapp.images.load_image` (the CLI tools' loader) under their user-facing
names, and enlarging the small results for the screen. A :class:`Demo` holds only the loaded
model, which every request shares read-only: the model stays in eval mode with gradients off
for its parameters, and each request keeps its noise, images and results in local variables
(seeded ``torch.Generator`` s inside :mod:`glowapp.generate`), so concurrent requests cannot mix
their results. No lock is needed: nothing writes to the model (the 1x1 convolutions' cached
inverses are keyed by parameter versions and replaced whole), which ``tests/demo/`` checks with
concurrent requests.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.functional import to_pil_image

from glowapp.checkpointing import CheckpointError
from glowapp.data.offline import load_image_set
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
from glowapp.image_flow import ImageFlow
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
from glowapp.loading import load
from glowapp.ood import (
    ALL,
    BACKGROUND_MODEL,
    BEST,
    SCORES,
    TPR,
    Detector,
    plot_histograms,
)

__all__ = [
    "DISPLAY_SIDE",
    "MAX_ALPHA",
    "MAX_ITERATIONS",
    "MANIPULATION_STEPS",
    "MAX_SET",
    "MAX_SAMPLES",
    "MAX_SCORED",
    "MAX_STEPS",
    "MAX_GUIDANCE",
    "MAX_TEMPERATURE",
    "MAX_UPLOAD_BYTES",
    "OOD_REFERENCE",
    "OOD_REFERENCE_SIZE",
    "Demo",
    "DemoInputError",
    "Inpainted",
    "Likeness",
    "LikenessCheck",
    "Score",
    "Upload",
    "default_background",
    "drawn_mask",
    "read_upload",
]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
"""Largest accepted upload (10 MiB); Gradio refuses bigger files before they are stored."""
MAX_SAMPLES = 64
"""Most samples one request may draw."""
MAX_TEMPERATURE = 1.5
MAX_GUIDANCE = 5.0
"""Largest classifier-free guidance weight the sample tab offers."""
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
OOD_REFERENCE = "fashion-mnist:test"
"""The in-distribution images the "Is this image like the training data?" tab fits on."""
OOD_REFERENCE_SIZE = 200
"""How many of them (the first): fitted once, on the tab's first request."""


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


def default_background(model: ImageFlow) -> ImageFlow | None:
    """The shipped background model (:data:`~glowapp.ood.BACKGROUND_MODEL`) when it is there and
    takes the model's images, else None (the likeness tab then leaves ``ratio`` out)."""
    try:
        background = load(BACKGROUND_MODEL, model.device)
    except CheckpointError:
        return None
    return background if background.image_shape == model.image_shape else None


@dataclass(frozen=True)
class Likeness:
    """What :meth:`LikenessCheck.judge` returns: one row per score and the histograms."""

    rows: list[list[object]]
    """``[score, value, threshold τ, "typical" | "outlier"]`` per score, the best one first."""
    plot: Image.Image
    """The reference's histogram of every score, with this image's value in red."""
    summary: str


@dataclass
class LikenessCheck:
    """The "Is this image like the training data?" tab: every score of :mod:`glowapp.ood` for one
    image, against a threshold at 95 % TPR on in-distribution reference images.

    The reference (:data:`OOD_REFERENCE`, its first :data:`OOD_REFERENCE_SIZE` images) is measured
    and fitted once, on the first request, under a lock; afterwards requests only read the fitted
    :class:`~glowapp.ood.Detector`. ``background``: the background model of ``ratio`` (without
    one, ``ratio`` is left out).
    """

    model: ImageFlow
    background: ImageFlow | None = None
    reference: str = OOD_REFERENCE
    reference_size: int = OOD_REFERENCE_SIZE
    _detector: Detector | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def names(self) -> list[str]:
        """The scores shown: all of them, ``ratio`` only with a background model (``combined``
        then has it as a part)."""
        return [n for n in ALL if self.background is not None or n != "ratio"]

    def detector(self) -> Detector:
        """The fitted detector (fitting it on the first call).

        Raises:
            ValueError: the reference cannot be read for this model, or is too small.
        """
        with self._lock:
            if self._detector is None:
                images = load_image_set(
                    self.reference, self.model.image_shape, self.reference_size
                ).images
                detector = Detector(self.model, self.names, self.background)
                self._detector = detector.fit_reference(images)
            return self._detector

    def judge(self, upload: Upload | None) -> Likeness:
        """Every score of one upload, its verdict, and where it falls on the reference.

        Raises:
            DemoInputError: no upload, or not a readable image.
        """
        if upload is None:
            raise DemoInputError("upload an image or pick an example")
        image = read_upload(upload, self.model.image_shape)
        detector = self.detector()
        values = {n: float(v[0]) for n, v in detector.score(image.image[None]).items()}
        order = [BEST, *(n for n in detector.names if n != BEST)]
        rows = [
            [
                name,
                round(values[name], 4),
                round(detector.thresholds[name], 4),
                "outlier" if values[name] > detector.thresholds[name] else "typical",
            ]
            for name in order
        ]
        png = plot_histograms(
            [(f"reference ({self.reference})", detector.reference_scores)],
            order,
            detector.thresholds,
            values,
        )
        verdict = rows[0][3]
        summary = (
            f"{upload.name}: {verdict} by the {BEST} score ({SCORES[BEST]}); "
            f"an image is an outlier when a score exceeds its threshold τ, which {TPR:.0%} of the "
            f"{len(detector.reference_scores[BEST])} reference images ({self.reference}) stay "
            "under"
        )
        if image.changed:
            summary += f". The upload was {image.description} to fit the model"
        return Likeness(rows, Image.open(io.BytesIO(png)), summary)


@dataclass(frozen=True)
class Demo:
    """The demo's operations on one loaded model (shared by all requests, never modified)."""

    model: ImageFlow
    background: ImageFlow | None = None
    """The background model of the likeness tab's ``ratio`` score (None: no ``ratio``)."""
    likeness: LikenessCheck = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Inpainting differentiates w.r.t. the image only; parameters need no graph.
        self.model.eval().requires_grad_(False)
        object.__setattr__(self, "likeness", LikenessCheck(self.model, self.background))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The model's ``(C, H, W)``."""
        return self.model.image_shape

    @property
    def description(self) -> str:
        """The model in one phrase: its flow class with that class's own arguments (from the
        checkpoint's flow spec) and the image shape, e.g.
        ``"NICE (couplings=4, hidden=128, blocks=0, num_classes=0) on 1×28×28 images"``."""
        spec = self.model.flow_spec
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

    def sample(
        self,
        temperature: float | None,
        num: float,
        seed: float | None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> Image.Image:
        """``num`` samples at ``temperature`` from ``seed``, as a grid ⌈√num⌉ images wide;
        ``guidance`` and ``denoise`` as the model allows (None: its own defaults)."""
        temperature = _number("temperature", temperature, MAX_TEMPERATURE)
        num = _whole("number of images", num, MAX_SAMPLES)
        if guidance is not None:
            guidance = _number("guidance", guidance, MAX_GUIDANCE)
        seed = _whole("seed", seed)
        samples = sample_grid(self.model, [temperature], num, seed, None, guidance, denoise)
        return self._display(samples, math.ceil(math.sqrt(num)))

    def interpolate(
        self, start: Upload | None, end: Upload | None, steps: float, mode: str
    ) -> Image.Image:
        """The row of ``steps`` images along the latent path from ``start`` to ``end``."""
        if start is None or end is None:
            raise DemoInputError("upload two images (or pick an example pair) to interpolate")
        steps = _whole("steps", steps, MAX_STEPS)
        a, b = (read_upload(upload, self.image_shape).image[None] for upload in (start, end))
        return self._display(interpolate(self.model, a, b, steps=steps, mode=mode), steps)

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
        result = inpaint(self.model, images, mask, iterations=iterations, progress=progress)
        before, after = log_prob_to_bits_per_dim(self.model, result.log_prob[[0, -1], 0]).tolist()
        masked, completion, original = (
            self._display([row], 1) for row in inpainting_rows(images, mask, result.images)
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
        direction = latent_direction(self.model, *sets)
        images = read_upload(image, self.image_shape).image[None]
        alphas = torch.linspace(0.0, alpha, MANIPULATION_STEPS).tolist()
        return self._display(manipulate(self.model, images, direction, alphas), len(alphas))

    def score(self, uploads: Sequence[Upload]) -> list[Score]:
        """Bits/dim of each upload at the bin centres (lower = more likely under the model)."""
        if not uploads:
            raise DemoInputError("upload one or more images to score")
        if len(uploads) > MAX_SCORED:
            raise DemoInputError(f"score at most {MAX_SCORED} images at a time, got {len(uploads)}")
        loaded = [read_upload(upload, self.image_shape) for upload in uploads]
        bpd = score(self.model, torch.stack([image.image for image in loaded]))
        return [
            Score(upload.name, round(value, 4), image.description)
            for upload, image, value in zip(uploads, loaded, bpd.tolist(), strict=True)
        ]
