"""Whole data splits as tensors, and model outputs as the uint8 images the metrics take."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = ["load_split", "to_uint8"]


def load_split(dataset: Dataset[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Every item of a DataModule's split, in order: uint8 images ``[N, C, H, W]`` and int64
    labels ``[N]``.

    Raises:
        ValueError: the split is empty.
    """
    batches = list(DataLoader(dataset, batch_size=4096))
    if not batches:
        raise ValueError("the data split is empty")
    images, labels = zip(*batches, strict=True)
    return torch.cat(images), torch.cat(labels)


def to_uint8(images: Tensor) -> Tensor:
    """Images in ``[0, 1]`` (e.g. samples) → uint8 ``0..255``, same shape; uint8 passes through."""
    if images.dtype == torch.uint8:
        return images
    return (images.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
