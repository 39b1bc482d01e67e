"""torch Datasets behind the DataModules: in-memory uint8 images, PIL adapters, split views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from glowapp.data.catalog import Layout
from glowapp.images import center_crop, fit_image, pil_to_tensor, to_mode

__all__ = [
    "EpochSeededSampler",
    "FitToSize",
    "PILImages",
    "Sample",
    "SplitView",
    "TensorImages",
    "fraction_count",
    "seeded_permutation",
]

Sample = tuple[torch.Tensor, torch.Tensor]
"""One item: a uint8 image ``[C, H, W]`` and its int64 label (a 0-d tensor)."""


class TensorImages(Dataset[Sample]):
    """Images held in memory: uint8 ``[N, C, H, W]`` and int64 labels ``[N]``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"expected uint8 images [N, C, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        if labels.shape != images.shape[:1]:
            raise ValueError(f"{len(images)} images but labels of shape {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.to(torch.int64)

    @classmethod
    def from_array(
        cls, data: np.ndarray | torch.Tensor, layout: Layout, labels: Any
    ) -> TensorImages:
        """A torchvision set's uint8 ``data`` array, with axes ``layout``, as ``[N, C, H, W]``.

        ``NHW`` gains a channel axis and ``NHWC`` is permuted; the array is copied at most once.
        """
        images = torch.as_tensor(data)
        if layout == "NHW":
            images = images.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
        elif layout == "NHWC":
            images = images.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        return cls(images.contiguous(), torch.as_tensor(labels))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        return self.images[index], self.labels[index]


class PILImages(Dataset[Sample]):
    """Adapts a torchvision dataset yielding ``(PIL image, target)`` to ``(uint8 [C,H,W], label)``.

    ``to_tensor`` turns the PIL image into the uint8 tensor; the label is ``fixed_label`` when given
    (e.g. 0 for CelebA, whose targets we do not use), else the dataset's integer target.
    """

    def __init__(
        self,
        dataset: Dataset[Any],
        to_tensor: Callable[[Image.Image], torch.Tensor],
        fixed_label: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.to_tensor = to_tensor
        self.fixed_label = fixed_label

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Sample:
        image, target = self.dataset[index]
        label = self.fixed_label if self.fixed_label is not None else int(target)
        return self.to_tensor(image), torch.tensor(label, dtype=torch.int64)


class SplitView(Dataset[Sample]):
    """The items ``indices`` of ``base``, optionally flipped left-right at random (p=0.5)."""

    def __init__(self, base: Dataset[Sample], indices: torch.Tensor, hflip: bool = False) -> None:
        self.base = base
        self.indices = indices.to(torch.int64)
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Sample:
        image, label = self.base[int(self.indices[index])]
        if self.hflip and bool(torch.rand(()) < 0.5):
            image = torch.flip(image, dims=(-1,))
        return image, label


class EpochSeededSampler(Sampler[int]):
    """A new random order each epoch, drawn from ``(seed, epoch)`` alone.

    Lightning calls :meth:`set_epoch` before every epoch, so a run resumed at an epoch boundary
    sees exactly the order an uninterrupted run would (the global RNG plays no part).
    """

    def __init__(self, num_items: int, seed: int) -> None:
        self.num_items = num_items
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_items

    def __iter__(self):  # type: ignore[no-untyped-def]
        generator = torch.Generator().manual_seed(hash((self.seed, self.epoch)) & 0x7FFF_FFFF_FFFF)
        yield from torch.randperm(self.num_items, generator=generator).tolist()


class FitToSize:
    """Picklable transform: PIL image → (optional square center crop) → fit to (H, W) → uint8."""

    def __init__(self, size: tuple[int, int], mode: str, pre_crop: int | None = None) -> None:
        self.size = size
        self.mode = mode
        self.pre_crop = pre_crop

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = to_mode(img, self.mode)
        if self.pre_crop is not None:
            img = center_crop(img, self.pre_crop)
        return pil_to_tensor(fit_image(img, self.size))


def seeded_permutation(n: int, seed: int) -> torch.Tensor:
    """A permutation of ``range(n)`` that depends only on ``seed`` (not on global RNG state)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)


def fraction_count(n: int, fraction: float) -> int:
    """How many of ``n`` items a split of ``fraction`` gets (at least 1 if fraction > 0, n > 1)."""
    if fraction <= 0 or n == 0:
        return 0
    return min(n - 1, max(1, round(n * fraction))) if n > 1 else 0
