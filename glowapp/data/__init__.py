"""Data for glowapp: LightningDataModules yielding uint8 image batches, and image loading.

Every DataModule yields ``(images, labels)`` with ``images`` uint8 ``[B, C, H, W]`` (0..255) and
``labels`` int64 ``[B]``; ``image_shape`` and ``num_classes`` are available right after
construction. :func:`load_image` prepares a single image file the same way for the CLI tools.
"""

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
from glowapp.data.sources import DatasetNotFoundError
from glowapp.images import ImageLoadError, LoadedImage, load_image

__all__ = [
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
    "load_image",
]
