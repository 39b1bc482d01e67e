"""Semantic manipulation between two classes of validation images during training."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from glowapp.callbacks.samples import ImageGridCallback
from glowapp.generate import class_direction, manipulate
from glowapp.images import tile
from glowapp.module import GlowModule


class ManipulationCallback(ImageGridCallback):
    """One row per validation image of ``negative_class``, moved by each ``α`` (one column each)
    along the direction from ``negative_class`` to ``positive_class``
    (:func:`glowapp.generate.class_direction`, recomputed with the current weights each time).

    The images are taken once, the first time the callback runs, from the DataModule's
    validation loader: the first ``num_images`` of ``negative_class`` are the rows, and the next
    ``set_size`` images of each class give the direction, so the rows are not in its sets.
    Without a DataModule the callback warns and does nothing.

    Args:
        every_n_steps: see :class:`~glowapp.callbacks.samples.ImageGridCallback`.
        every_n_epochs: see :class:`~glowapp.callbacks.samples.ImageGridCallback`.
        positive_class: the class moved towards (e.g. 9, ankle boot on Fashion-MNIST).
        negative_class: the class moved from (e.g. 7, sneaker).
        alphas: steps along the direction, one column each; 0 shows the input.
        num_images: rows.
        set_size: validation images per class that give the direction.

    The classes and ``alphas`` are checked by :mod:`glowapp.generate`, at the first render.
    """

    name = "manipulation"

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        positive_class: int = 9,
        negative_class: int = 7,
        alphas: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0),
        num_images: int = 4,
        set_size: int = 64,
    ) -> None:
        super().__init__(every_n_steps, every_n_epochs)
        for label, value in (("num_images", num_images), ("set_size", set_size)):
            if value < 1:
                raise ValueError(f"{label} must be at least 1, got {value}")
        self.positive_class = positive_class
        self.negative_class = negative_class
        self.alphas = list(alphas)
        self.num_images = num_images
        self.set_size = set_size
        self._images: tuple[Tensor, Tensor, Tensor] | None = None

    def _labelled_images(self, trainer: pl.Trainer) -> tuple[Tensor, Tensor, Tensor] | None:
        """(rows, images, labels): the rows to manipulate and the labelled direction set."""
        if trainer.datamodule is None:
            rank_zero_warn(f"{type(self).__name__}: needs a DataModule with labels; skipped")
            return None
        wanted = {self.positive_class: self.set_size, self.negative_class: self.num_images}
        wanted[self.negative_class] += self.set_size
        kept: list[tuple[Tensor, Tensor]] = []
        for images, labels in trainer.datamodule.val_dataloader():
            for k in wanted:
                chosen = (labels == k).nonzero()[:, 0][: wanted[k]]
                wanted[k] -= len(chosen)
                kept.append((images[chosen], labels[chosen]))
            if not any(wanted.values()):
                break
        if not kept:
            rank_zero_warn(f"{type(self).__name__}: the validation set is empty; skipped")
            return None
        images, labels = (torch.cat(parts) for parts in zip(*kept, strict=True))
        is_row = (labels == self.negative_class).cumsum(0) <= self.num_images
        is_row &= labels == self.negative_class
        return images[is_row], images[~is_row], labels[~is_row]

    def render(self, trainer: pl.Trainer, module: GlowModule) -> Tensor | None:
        if self._images is None:
            self._images = self._labelled_images(trainer)
            if self._images is None:
                return None
        rows, images, labels = self._images
        direction = class_direction(
            module, images, labels, self.positive_class, self.negative_class
        )
        return tile(manipulate(module, rows, direction, self.alphas), len(self.alphas))
