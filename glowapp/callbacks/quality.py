"""FID and KID of samples during training, logged at validation beside ``val/bpd``."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from glowapp.evaluation.extractors import FeatureExtractor, default_features, feature_extractor
from glowapp.evaluation.metrics import SampleQuality, check_set_size
from glowapp.evaluation.report import sample_batches
from glowapp.generate import draw_noise
from glowapp.module import GlowModule


class SampleQualityCallback(Callback):
    """At validation, FID and KID of ``num_samples`` samples against the validation images.

    Logged as ``val/fid_<features>`` and ``val/kid_<features>`` (e.g. ``val/fid_fashion_mnist``):
    the key names the feature space, since distances in different spaces are not comparable.
    The samples decode one fixed noise draw (from ``seed``) at ``temperature``, so successive
    values follow the model, not the draw; with an :class:`~glowapp.callbacks.EMA` callback
    they come from the averaged weights, which validation runs with. The real set is every
    validation image of the epoch (at least ``F + 1`` for ``F`` feature dimensions), so
    values are comparable within a run, not with ``glowapp evaluate``'s, which use the test
    split and usually more samples (FID falls as N grows). Runs on global rank zero only, never
    during the sanity check; with several validation loaders, on the last.

    Args:
        num_samples: samples per measurement (more than the feature dimension: 128 for
            ``fashion-mnist``).
        temperature: sampling temperature (a float, or one per level).
        features: ``fashion-mnist`` or ``inception``; None: ``fashion-mnist`` for 1×28×28
            models, else ``inception`` (see :mod:`glowapp.evaluation.extractors`).
        every_n_epochs: measure at the validations of every this many epochs.
        batch_size: images per sampling and feature batch.
        seed: seed of the noise and of KID's subsets.
        guidance: classifier-free guidance weight (None: the model's default; models trained
            with label dropout only).
        denoise: the Tweedie denoising step (None: on exactly for models trained with noise).
    """

    def __init__(
        self,
        num_samples: int = 1000,
        temperature: float | list[float] = 0.7,
        features: str | None = None,
        every_n_epochs: int = 1,
        batch_size: int = 250,
        seed: int = 0,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be a positive integer, got {every_n_epochs}")
        self.num_samples = num_samples
        self.temperature = temperature
        self.features = features
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.seed = seed
        self.guidance = guidance
        self.denoise = denoise
        self._extractor: FeatureExtractor | None = None
        self._noise: list[Tensor] | None = None
        self._real: list[Tensor] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._build(pl_module)  # a missing extractor or a bad num_samples fails before training

    def _build(self, pl_module: pl.LightningModule) -> FeatureExtractor:
        if not isinstance(pl_module, GlowModule):
            raise TypeError(
                f"{type(self).__name__} needs a GlowModule, got {type(pl_module).__name__}"
            )
        if self._extractor is None:
            shape = pl_module.image_shape
            name = self.features or default_features(shape)
            self._extractor = feature_extractor(name, shape, pl_module.device)
            check_set_size(self.num_samples, "samples", self._extractor)
        self._extractor.network.to(pl_module.device)
        return self._extractor

    def _active(self, trainer: pl.Trainer) -> bool:
        return (
            trainer.is_global_zero
            and not trainer.sanity_checking
            and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        )

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._real = []

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._active(trainer):
            return
        images = batch[0] if isinstance(batch, list | tuple) else batch
        self._real.append(images.detach().cpu())
        # Measured at the last batch of the last loader, while validation's (e.g. EMA) weights
        # are still in place: callbacks' epoch-end hooks may swap them back before ours runs.
        last_loader = dataloader_idx == len(trainer.num_val_batches) - 1
        if last_loader and batch_idx + 1 == trainer.num_val_batches[dataloader_idx]:
            self._measure(pl_module)

    def _measure(self, pl_module: pl.LightningModule) -> None:
        extractor = self._build(pl_module)
        real = torch.cat(self._real)
        self._real = []
        if len(real) <= extractor.num_features:
            rank_zero_warn(
                f"{type(self).__name__}: {len(real)} validation images are too few for FID in "
                f"the {extractor.num_features}-dimensional {extractor.label}; skipped"
            )
            return
        assert isinstance(pl_module, GlowModule)
        if self._noise is None:
            self._noise = [eps.cpu() for eps in draw_noise(pl_module, self.num_samples, self.seed)]
        quality = SampleQuality(extractor, real, self.num_samples, self.batch_size, self.seed)
        samples = sample_batches(
            pl_module, self._noise, self.temperature, self.batch_size, self.guidance, self.denoise
        )
        result = quality.score(samples)
        for metric, value in (("fid", result.fid), ("kid", result.kid)):
            pl_module.log(f"val/{metric}_{extractor.key}", value, rank_zero_only=True)
