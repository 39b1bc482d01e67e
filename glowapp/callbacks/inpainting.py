"""Inpainting of fixed validation images during training."""

from __future__ import annotations

import pytorch_lightning as pl
from torch import Tensor

from glowapp.callbacks.samples import ImageGridCallback, validation_images
from glowapp.generate import inpaint, inpainting_rows, resolve_mask, tile
from glowapp.module import GlowModule


class InpaintingCallback(ImageGridCallback):
    """Three rows: validation images with the hidden region marked, their completion, the originals.

    Completion by :func:`glowapp.generate.inpaint` (gradient ascent on ``log p_Y`` over the
    hidden pixels, from a seeded noise start). The images are taken once, the first time the
    callback runs; until validation images are available it does nothing.

    Args:
        every_n_steps: see :class:`~glowapp.callbacks.samples.ImageGridCallback`.
        every_n_epochs: see :class:`~glowapp.callbacks.samples.ImageGridCallback`.
        mask: ``center``, ``left``, ``right``, ``top``, ``bottom``, ``random`` or a mask image
            path (white = hidden); see :func:`glowapp.generate.resolve_mask`.
        fraction: share of the image the mask hides (None: the mask's default).
        num_images: images per row.
        iterations: gradient steps per call (each costs a forward and backward pass).
        step_size: initial step ``α_0`` of :func:`glowapp.generate.inpaint`.
        noise_scale: initial std of the annealed noise (0 = plain gradient ascent).
        seed: seeds the random mask, the noise start and the noise.
    """

    name = "inpainting"

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        mask: str = "center",
        fraction: float | None = None,
        num_images: int = 8,
        iterations: int = 200,
        step_size: float = 1e-3,
        noise_scale: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_steps, every_n_epochs)
        if num_images < 1 or iterations < 0:
            raise ValueError(
                f"need num_images >= 1 and iterations >= 0, got {num_images} and {iterations}"
            )
        self.mask = mask
        self.fraction = fraction
        self.num_images = num_images
        self.iterations = iterations
        self.step_size = step_size
        self.noise_scale = noise_scale
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
            noise_scale=self.noise_scale,
            seed=self.seed,
        )
        return tile(inpainting_rows(self._images, mask, result), len(self._images))
