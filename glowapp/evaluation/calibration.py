"""Calibration rows: real images degraded by a known amount, scored like samples, so a reader sees
what a distance means in a feature space (e.g. "FID 80 ≈ real images blurred by 1 px").

Two degradations of uint8 images ``k ∈ {0..255}``, with ``x = k / 255 ∈ [0, 1]``:

- **blur**: ``x * g_σ``, a separable Gaussian kernel ``g_σ(i) ∝ exp(−i² / 2σ²)`` over
  ``|i| ≤ ⌈3σ⌉`` pixels, normalised to sum 1, the border replicated;
- **noise**: ``clip(x + σ ε, 0, 1)``, ``ε ~ N(0, I)``.

Both are quantised back to 8 bits (``round(255 x)``), as every image the metrics see is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from glowapp.evaluation.data import to_uint8
from glowapp.evaluation.metrics import Quality, SampleQuality
from glowapp.images import as_float_images

__all__ = [
    "CALIBRATIONS",
    "DEGRADATIONS",
    "CalibrationRow",
    "Degradation",
    "calibration_rows",
    "gaussian_blur",
    "gaussian_noise",
]

DEGRADATIONS = ("blur", "noise")
"""The kinds of :class:`Degradation`."""


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """uint8 (or ``[0, 1]`` float) images ``[B, C, H, W]`` blurred by a Gaussian of std ``sigma``
    pixels (each channel alone), as uint8."""
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = as_float_images(images)
    b, c, h, w = x.shape
    x = F.pad(x.reshape(b * c, 1, h, w), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).to(x))  # along rows
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).to(x))  # along columns
    return to_uint8(x.reshape(b, c, h, w))


def gaussian_noise(images: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """uint8 (or ``[0, 1]`` float) images plus Gaussian noise of std ``sigma`` on ``[0, 1]``,
    clipped, as uint8; ``generator`` (CPU) draws the noise."""
    x = as_float_images(images)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return to_uint8(x + sigma * noise)


@dataclass(frozen=True)
class Degradation:
    """A blur of ``sigma`` pixels or Gaussian noise of std ``sigma`` (on ``[0, 1]``)."""

    kind: str
    sigma: float

    def __post_init__(self) -> None:
        if self.kind not in DEGRADATIONS:
            raise ValueError(
                f"unknown degradation {self.kind!r}; choose {' or '.join(DEGRADATIONS)}"
            )
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"a degradation's sigma must be a finite number > 0, got {self.sigma}")

    @property
    def label(self) -> str:
        """How tables name it, e.g. ``"blur σ = 1 px"``, ``"noise σ = 0.1"``."""
        return f"blur σ = {self.sigma:g} px" if self.kind == "blur" else f"noise σ = {self.sigma:g}"

    def batches(self, images: Tensor, batch_size: int, seed: int = 0) -> Iterator[Tensor]:
        """``images`` degraded, uint8, ``batch_size`` at a time (noise drawn from ``seed``)."""
        generator = torch.Generator().manual_seed(seed)
        for batch in images.split(batch_size):
            if self.kind == "blur":
                yield gaussian_blur(batch, self.sigma)
            else:
                yield gaussian_noise(batch, self.sigma, generator)


CALIBRATIONS = (
    Degradation("blur", 0.5),
    Degradation("blur", 1.0),
    Degradation("blur", 1.5),
    Degradation("noise", 0.05),
    Degradation("noise", 0.1),
    Degradation("noise", 0.2),
)
"""The rows ``glowapp evaluate`` adds (issue 22's calibration table)."""


@dataclass(frozen=True)
class CalibrationRow:
    """The distances of real images degraded by ``degradation`` from the real set."""

    degradation: Degradation
    quality: Quality

    def as_dict(self) -> dict[str, float | str]:
        """``{"images": kind, "sigma", "fid", "kid", "kid_std", "precision", "recall"}``."""
        return {
            "images": self.degradation.kind,
            "sigma": self.degradation.sigma,
            **self.quality.as_dict(),
        }


def calibration_rows(
    quality: SampleQuality,
    images: Tensor,
    degradations: Sequence[Degradation] = CALIBRATIONS,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[CalibrationRow]:
    """Score ``images`` (uint8, ``quality.num_fake`` of them, real but not the set ``quality``
    compares against, e.g. training images) under each degradation.

    ``progress(label, done, total)`` is called as each row advances.
    """

    def stage(label: str) -> Callable[[int], None] | None:
        return None if progress is None else (lambda done: progress(label, done, len(images)))

    rows = []
    for degradation in degradations:
        batches = degradation.batches(images, quality.batch_size, seed)
        rows.append(CalibrationRow(degradation, quality.score(batches, stage(degradation.label))))
    return rows
