"""Data for glowapp: LightningDataModules yielding uint8 image batches, and image loading.

Every DataModule yields ``(images, labels)`` with ``images`` uint8 ``[B, C, H, W]`` (0..255) and
``labels`` int64 ``[B]``; ``image_shape`` and ``num_classes`` are available right after
construction. :func:`load_image` prepares a single image file the same way for the CLI tools.
"""

from glowapp.data.datamodules import (
    CelebADataModule,
    CIFAR10DataModule,
    FashionMNISTDataModule,
    ImageDataModule,
    MNISTDataModule,
    SVHNDataModule,
)
from glowapp.data.folder import ImageFolderDataModule
from glowapp.data.images import ImageLoadError, LoadedImage, load_image
from glowapp.data.sources import DatasetNotFoundError

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
    "load_image",
]
