"""Latent interpolations between fixed pairs of validation images during training."""

from __future__ import annotations

import pytorch_lightning as pl
from torch import Tensor

from glowapp.callbacks.samples import ImageGridCallback, validation_images
from glowapp.generate import interpolate
from glowapp.images import tile
from glowapp.module import GlowModule


class InterpolationCallback(ImageGridCallback):
    """One row per pair of validation images: the real first image, the latent path, the second.

    The ``2 · num_pairs`` images are taken once, the first time the callback runs (see
    :func:`~glowapp.callbacks.samples.validation_images`), and reused afterwards; until
    validation images are available the callback does nothing.

    Args:
        every_n_steps: see :class:`~glowapp.callbacks.samples.ImageGridCallback`.
        every_n_epochs: see :class:`~glowapp.callbacks.samples.ImageGridCallback`.
        num_pairs: rows (pairs of images).
        steps: images per row, endpoints included.
        mode: ``"linear"`` or ``"spherical"`` interpolation of every level's latent.

    ``steps`` and ``mode`` are checked by :func:`glowapp.generate.interpolate`, at the first
    render.
    """

    name = "interpolation"

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        num_pairs: int = 4,
        steps: int = 8,
        mode: str = "linear",
    ) -> None:
        super().__init__(every_n_steps, every_n_epochs)
        if num_pairs < 1:
            raise ValueError(f"num_pairs must be at least 1, got {num_pairs}")
        self.num_pairs = num_pairs
        self.steps = steps
        self.mode = mode
        self._pairs: tuple[Tensor, Tensor] | None = None

    def render(self, trainer: pl.Trainer, module: GlowModule) -> Tensor | None:
        if self._pairs is None:
            images = validation_images(trainer, 2 * self.num_pairs, type(self).__name__)
            if images is None or len(images) < 2:
                return None
            half = len(images) // 2
            self._pairs = (images[:half], images[half : 2 * half])
        path = interpolate(module, *self._pairs, steps=self.steps, mode=self.mode)
        return tile(path, self.steps)
