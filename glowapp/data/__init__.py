"""Data for glowapp: LightningDataModules yielding uint8 image batches, named splits, images.

Every DataModule yields ``(images, labels)`` with ``images`` uint8 ``[B, C, H, W]`` (0..255) and
``labels`` int64 ``[B]``; ``image_shape`` and ``num_classes`` are available right after
construction. :func:`load_named_split` reads a whole split of a data set named in
:data:`DATA_SETS` as tensors, and :func:`load_image` prepares a single image file the same way,
for the CLI tools.

Every name is imported on first use: ``import glowapp.data`` costs nothing, the names that read
data for inference (:func:`load_named_split`, …) import torchvision's data sets but not
Lightning, and only the DataModules import Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glowapp.data.base import ImageDataModule
    from glowapp.data.datamodules import (
        CelebADataModule,
        CIFAR10DataModule,
        FashionMNISTDataModule,
        MNISTDataModule,
        SVHNDataModule,
        TorchvisionDataModule,
    )
    from glowapp.data.folder import ImageFolderDataModule
    from glowapp.data.named import DATA_SETS, load_named_split, parse_split_spec
    from glowapp.data.sources import DatasetNotFoundError
    from glowapp.data.splits import TorchvisionSplits
    from glowapp.images import ImageLoadError, LoadedImage, load_image

__all__ = [
    "DATA_SETS",
    "CIFAR10DataModule",
    "CelebADataModule",
    "DatasetNotFoundError",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ImageLoadError",
    "LoadedImage",
    "MNISTDataModule",
    "SVHNDataModule",
    "TorchvisionDataModule",
    "TorchvisionSplits",
    "load_image",
    "load_named_split",
    "parse_split_spec",
]

_MODULES = {
    "DATA_SETS": "glowapp.data.named",
    "load_named_split": "glowapp.data.named",
    "parse_split_spec": "glowapp.data.named",
    "DatasetNotFoundError": "glowapp.data.sources",
    "TorchvisionSplits": "glowapp.data.splits",
    "ImageLoadError": "glowapp.images",
    "LoadedImage": "glowapp.images",
    "load_image": "glowapp.images",
    "ImageDataModule": "glowapp.data.base",
    "CelebADataModule": "glowapp.data.datamodules",
    "CIFAR10DataModule": "glowapp.data.datamodules",
    "FashionMNISTDataModule": "glowapp.data.datamodules",
    "MNISTDataModule": "glowapp.data.datamodules",
    "SVHNDataModule": "glowapp.data.datamodules",
    "TorchvisionDataModule": "glowapp.data.datamodules",
    "ImageFolderDataModule": "glowapp.data.folder",
}
"""Every exported name, and the module it is imported from on first use."""


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
