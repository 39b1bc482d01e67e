"""Checks on what glowapp's DataModules serve: uint8 image batches and int64 labels."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.utils.data import Dataset

Batch = tuple[torch.Tensor, torch.Tensor]


def first_batch(loader: Iterable[Batch]) -> Batch:
    """The first ``(images, labels)`` batch of a DataLoader."""
    return next(iter(loader))


def check_batch(batch: Batch, shape: tuple[int, int, int], batch_size: int) -> None:
    """Assert ``batch`` is uint8 images ``[batch_size, *shape]`` with int64 labels ``[batch_size]``."""
    images, labels = batch
    assert images.dtype == torch.uint8
    assert tuple(images.shape) == (batch_size, *shape)
    assert labels.dtype == torch.int64
    assert tuple(labels.shape) == (batch_size,)


def split_images(dataset: Dataset[Batch]) -> torch.Tensor:
    """Every image of a split, stacked in order: uint8 ``[N, C, H, W]``."""
    return torch.stack([dataset[i][0] for i in range(len(dataset))])  # type: ignore[arg-type]
