"""ImageDataModule: the base of every glowapp DataModule (uint8 batches, seeded splits, limits).

Every module yields batches ``(images, labels)``: ``images`` is a uint8 tensor ``[B, C, H, W]``
with values 0..255 (the model dequantizes itself), ``labels`` int64 ``[B]``. ``image_shape`` and
``num_classes`` are known right after ``__init__``, before any data is touched, so LightningCLI
can link them to the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from glowapp.data.datasets import (
    EpochSeededSampler,
    Sample,
    SplitView,
    fraction_count,
    seeded_permutation,
)

__all__ = ["ImageDataModule", "Pool"]


class Pool(NamedTuple):
    """Where a DataModule's split comes from: a base dataset and the indices of the split."""

    base: Dataset[Sample]
    indices: torch.Tensor


class ImageDataModule(pl.LightningDataModule, ABC):
    """Base class of the glowapp DataModules: uint8 image batches, seeded splits, limits.

    Subclasses provide ``image_shape``/``num_classes`` and implement :meth:`_fit_pools` (train
    and validation) and :meth:`_test_pool`. ``*_limit`` arguments keep only the first N images of
    a split, after the seeded split.

    Args:
        batch_size: Images per batch (per device under DDP).
        num_workers: DataLoader worker processes (0 loads in the main process).
        val_fraction: Fraction of the training split held out for validation (seeded).
        seed: Seed of the train/validation split and of the epoch orders (independent of the
            global seed).
        hflip: Randomly flip training images left-right (never validation/test images).
        train_limit: Use only the first N training images (after the split); None for all.
        val_limit: Use only the first N validation images; None for all.
        test_limit: Use only the first N test images; None for all.
        pin_memory: Pin batches in page-locked memory (faster host-to-GPU copies).
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        hflip: bool = False,
        train_limit: int | None = None,
        val_limit: int | None = None,
        test_limit: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        for name, limit in (("train", train_limit), ("val", val_limit), ("test", test_limit)):
            if limit is not None and limit < 0:
                raise ValueError(f"{name}_limit must be >= 0 or None, got {limit}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.seed = seed
        self.hflip = hflip
        self.train_limit = train_limit
        self.val_limit = val_limit
        self.test_limit = test_limit
        self.pin_memory = pin_memory
        self.train_dataset: SplitView | None = None
        self.val_dataset: SplitView | None = None
        self.test_dataset: SplitView | None = None
        self.save_hyperparameters()

    # -- what subclasses provide -------------------------------------------------------------

    @property
    @abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images in every batch."""

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Number of distinct labels (1 for unlabelled sets such as CelebA)."""

    @abstractmethod
    def _fit_pools(self) -> tuple[Pool, Pool]:
        """The full (unlimited) training and validation splits."""

    @abstractmethod
    def _test_pool(self) -> Pool:
        """The full (unlimited) test split."""

    def _check_available(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`DatasetNotFoundError` early if the data is missing (no downloads)."""

    # -- Lightning hooks -----------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Build the splits needed for ``stage`` (``fit``, ``validate``, ``test``, ``predict``)."""
        need_fit = stage in (None, "fit", "validate") and self.train_dataset is None
        need_test = stage in (None, "test", "predict") and self.test_dataset is None
        if not (need_fit or need_test):
            return
        self._check_available()
        if need_fit:
            train, val = self._fit_pools()
            self.train_dataset = SplitView(
                train.base, _limit(train.indices, self.train_limit), hflip=self.hflip
            )
            self.val_dataset = SplitView(val.base, _limit(val.indices, self.val_limit))
            if len(self.train_dataset) == 0:
                raise ValueError(f"{type(self).__name__}: the training split is empty")
        if need_test:
            test = self._test_pool()
            self.test_dataset = SplitView(test.base, _limit(test.indices, self.test_limit))

    def train_dataloader(self) -> DataLoader[Sample]:
        """Shuffled training batches; the last incomplete batch is dropped."""
        dataset = self._split("train")
        drop_last = True
        if len(dataset) < self.batch_size:
            rank_zero_warn(
                f"The training split has {len(dataset)} images, fewer than batch_size="
                f"{self.batch_size}; serving it as one smaller batch instead of dropping it."
            )
            drop_last = False
        return self._loader(dataset, shuffle=True, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader[Sample]:
        """Validation batches in a fixed order."""
        return self._loader(self._split("val"), shuffle=False)

    def test_dataloader(self) -> DataLoader[Sample]:
        """Test batches in a fixed order."""
        return self._loader(self._split("test"), shuffle=False)

    # -- helpers -------------------------------------------------------------------------------

    def _split(self, name: str) -> SplitView:
        """The ``train``/``val``/``test`` split, set up on demand when used outside a Trainer."""
        dataset = getattr(self, f"{name}_dataset")
        if dataset is None:
            self.setup("test" if name == "test" else "fit")
            dataset = getattr(self, f"{name}_dataset")
        return dataset

    def _loader(
        self, dataset: SplitView, shuffle: bool, drop_last: bool = False
    ) -> DataLoader[Sample]:
        # Single process: an epoch-seeded order (exact resumes). Distributed: a plain shuffle,
        # which Lightning replaces with its (equally epoch-seeded) DistributedSampler.
        sampler = None
        if shuffle and not (dist.is_available() and dist.is_initialized()):
            sampler, shuffle = EpochSeededSampler(len(dataset), self.seed), False
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def _seeded_val_split(self, base: Dataset[Sample], n: int) -> tuple[Pool, Pool]:
        """Hold out a seeded ``val_fraction`` of an official training split for validation."""
        order = seeded_permutation(n, self.seed)
        n_val = fraction_count(n, self.val_fraction)
        return Pool(base, order[n_val:]), Pool(base, order[:n_val])


def _limit(indices: torch.Tensor, limit: int | None) -> torch.Tensor:
    """The first ``limit`` indices (all of them for None)."""
    return indices if limit is None else indices[:limit]
