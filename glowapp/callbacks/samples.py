"""Sample grids during training, and the base class of every image-writing callback."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor
from torchvision.transforms.functional import to_pil_image

from glowapp.callbacks.ema import averaged_weights
from glowapp.generate import Temperature, class_labels, draw_noise, sample_with_noise
from glowapp.images import save_png, tile
from glowapp.module import GlowModule


def image_dir(trainer: pl.Trainer) -> Path:
    """``<run directory>/images``: the first logger's ``log_dir`` (TensorBoard, CSV), else its
    ``save_dir``, else ``trainer.default_root_dir``.

    Read from the logger directly (not ``trainer.log_dir``, which broadcasts and so must not be
    called from rank zero alone).
    """
    for logger in trainer.loggers:
        directory = getattr(logger, "log_dir", None) or logger.save_dir
        if directory:
            return Path(directory) / "images"
    return Path(trainer.default_root_dir) / "images"


def log_image(trainer: pl.Trainer, tag: str, grid: Tensor, step: int) -> None:
    """Send an RGB image ``[3, H, W]`` in ``[0, 1]`` to every logger that takes images.

    TensorBoard (``add_image``) and Weights & Biases (``log_image``); other loggers are skipped.
    """
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, grid, global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[to_pil_image(grid)], step=step)


def validation_images(trainer: pl.Trainer, count: int, user: str) -> Tensor | None:
    """The first ``count`` validation images (uint8 ``[count, C, H, W]``), or None if unavailable.

    Taken from ``trainer.datamodule.val_dataloader()`` when there is a DataModule, else from the
    validation loaders the trainer has loaded (``trainer.val_dataloaders``, set once validation
    has run, e.g. the sanity check). When there are none yet, warns in the name of ``user``.
    """
    datamodule = trainer.datamodule
    loaders: Any = (
        datamodule.val_dataloader() if datamodule is not None else trainer.val_dataloaders
    )
    if loaders is None:
        rank_zero_warn(f"{user}: no validation images available yet; skipped")
        return None
    if isinstance(loaders, Mapping):
        loaders = list(loaders.values())
    elif not isinstance(loaders, Sequence):
        loaders = [loaders]
    batches, total = [], 0
    for loader in loaders:
        for batch in loader:
            images = batch[0] if isinstance(batch, list | tuple) else batch
            batches.append(images)
            total += len(images)
            if total >= count:
                return torch.cat(batches)[:count]
    if not batches:
        rank_zero_warn(f"{user}: the validation set is empty; skipped")
        return None
    return torch.cat(batches)[:count]


class ImageGridCallback(Callback, ABC):
    """Every ``every_n_steps`` optimizer steps and/or ``every_n_epochs`` epochs, render one image.

    Subclasses implement :meth:`render`. The image is written to
    ``<run dir>/images/<name>_step<global step>.png`` (see :func:`image_dir`) and logged as
    ``images/<name>`` to TensorBoard / W&B loggers. Runs on global rank zero only, never during
    the sanity check, at most once per global step. The generation functions switch the module
    to eval mode (and back) and handle gradients themselves. With an :class:`~glowapp.callbacks.EMA`
    callback in the trainer, images are rendered with the averaged weights.

    Args:
        every_n_steps: render every this many optimizer steps (None: never by steps).
        every_n_epochs: render at the end of every this many training epochs (None: never).
    """

    name: str = "images"

    def __init__(self, every_n_steps: int | None = None, every_n_epochs: int | None = 1) -> None:
        for label, value in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            if value is not None and value < 1:
                raise ValueError(f"{label} must be a positive integer or None, got {value}")
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self._last_step: int | None = None
        self.last_path: Path | None = None
        """Where the latest image was written."""

    @abstractmethod
    def render(self, trainer: pl.Trainer, module: GlowModule) -> Tensor | None:
        """The image ``[3, H, W]`` in ``[0, 1]`` to write, or None to skip this time."""

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0:
            self._write(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._write(trainer, pl_module)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or trainer.sanity_checking or step == self._last_step:
            return
        if not isinstance(pl_module, GlowModule):
            raise TypeError(
                f"{type(self).__name__} needs a GlowModule, got {type(pl_module).__name__}"
            )
        with averaged_weights(trainer, pl_module):
            grid = self.render(trainer, pl_module)
        if grid is None:
            return
        self._last_step = step
        self.last_path = save_png(grid, image_dir(trainer) / f"{self.name}_step{step:07d}.png")
        log_image(trainer, f"images/{self.name}", grid, step)


class SampleGridCallback(ImageGridCallback):
    """Samples at several temperatures from one fixed noise draw, one row per temperature.

    The noise ``ε`` is drawn once from ``seed`` (the first time) and reused at every call, so
    successive grids show how the same latents decode as training goes on.

    Args:
        every_n_steps: see :class:`ImageGridCallback`.
        every_n_epochs: see :class:`ImageGridCallback`.
        temperatures: one row per temperature; each a float or one float per level.
        num_samples: samples per row.
        seed: seed of the fixed noise.
        labels: classes to sample from a class-conditional model, repeated cyclically along
            each row (None: every class in turn). A model without classes rejects labels.
        guidance: classifier-free guidance weight (None: the model's default; models trained
            with label dropout only).
        denoise: the Tweedie denoising step (None: on exactly for models trained with noise).

    The temperatures, sample count, seed and labels are checked where they are used
    (:mod:`glowapp.generate`), so a bad one raises its ``ValueError`` at the first render.
    """

    name = "samples"

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = 1,
        temperatures: Sequence[Temperature] = (0.0, 0.5, 0.7, 0.8, 0.9, 1.0),
        num_samples: int = 8,
        seed: int = 0,
        labels: Sequence[int] | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> None:
        super().__init__(every_n_steps, every_n_epochs)
        self.temperatures = list(temperatures)
        self.num_samples = num_samples
        self.seed = seed
        self.labels = None if labels is None else list(labels)
        self.guidance = guidance
        self.denoise = denoise
        self._noise: list[Tensor] | None = None

    def render(self, trainer: pl.Trainer, module: GlowModule) -> Tensor:
        if self._noise is None:
            self._noise = [eps.cpu() for eps in draw_noise(module, self.num_samples, self.seed)]
        labels = class_labels(module, self.labels, self.num_samples)
        grid = sample_with_noise(
            module, self._noise, self.temperatures, labels, self.guidance, self.denoise
        )
        return tile(grid, self.num_samples)
