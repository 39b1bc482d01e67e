"""Inpainting of fixed validation images during training."""

from __future__ import annotations

import pytorch_lightning as pl
from torch import Tensor

from glowapp.callbacks.samples import ImageGridCallback, validation_images
from glowapp.generate import inpaint
from glowapp.generate.inpainting import ITERATIONS
from glowapp.images import inpainting_rows, tile
from glowapp.masks import resolve_mask
from glowapp.module import GlowModule


class InpaintingCallback(ImageGridCallback):
    """Three rows: validation images with the hidden region marked, their completion, the originals.

    Completion by :func:`glowapp.generate.inpaint` (the most likely completion under the model,
    by Adam on the hidden pixels from a smooth fill). The images are taken once, the first time the
    callback runs; until validation images are available it does nothing.

    Args:
        every_n_steps: see :class:`~glowapp.callbacks.samples.ImageGridCallback`.
        every_n_epochs: see :class:`~glowapp.callbacks.samples.ImageGridCallback`.
        mask: ``center``, ``left``, ``right``, ``top``, ``bottom``, ``random`` or a mask image
            path (white = hidden); see :func:`glowapp.masks.resolve_mask`.
        fraction: share of the image the mask hides (None: the mask's default).
        num_images: images per row.
        iterations: iteration limit per call (each costs a forward and backward pass).
        step_size: Adam's learning rate of :func:`glowapp.generate.inpaint`.
        tolerance: relative change of log p below which :func:`~glowapp.generate.inpaint` stops.
        seed: seeds the random mask.

    The mask, fraction and inpainting options are checked by :mod:`glowapp.generate`
    (:func:`~glowapp.masks.resolve_mask`, :func:`~glowapp.generate.inpaint`), at the first
    render.
    """

    name = "inpainting"

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        mask: str = "center",
        fraction: float | None = None,
        num_images: int = 8,
        iterations: int = ITERATIONS,
        step_size: float = 0.1,
        tolerance: float = 1e-3,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_steps, every_n_epochs)
        if num_images < 1:
            raise ValueError(f"num_images must be at least 1, got {num_images}")
        self.mask = mask
        self.fraction = fraction
        self.num_images = num_images
        self.iterations = iterations
        self.step_size = step_size
        self.tolerance = tolerance
        self.seed = seed
        self._images: Tensor | None = None

    def render(self, trainer: pl.Trainer, module: GlowModule) -> Tensor | None:
        if self._images is None:
            self._images = validation_images(trainer, self.num_images, type(self).__name__)
            if self._images is None:
                return None
        mask = resolve_mask(self.mask, module.image_shape[1:], self.fraction, self.seed)
        result = inpaint(
            module,
            self._images,
            mask,
            iterations=self.iterations,
            step_size=self.step_size,
            tolerance=self.tolerance,
        )
        return tile(inpainting_rows(self._images, mask, result.images), len(self._images))
