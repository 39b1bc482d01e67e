"""The torchvision-backed DataModules: one implementation, driven by the rows of :mod:`catalog`.

Splits: the official test split is the test set; the validation set is a seeded random
``val_fraction`` of the official training split (CelebA's official "valid" partition is not
used). Finding, unpacking, downloading and reading the files is
:class:`~glowapp.data.splits.TorchvisionSplits`'s (Lightning-free, shared with the inference
tools); this module adds the Lightning hooks and the splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import Dataset

from glowapp.data import catalog
from glowapp.data.base import ImageDataModule, Pool
from glowapp.data.catalog import DEBIAN_FASHION_MNIST, TorchvisionSet
from glowapp.data.datasets import Sample
from glowapp.data.splits import OFFLINE, TorchvisionSplits

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "CIFAR10DataModule",
    "CelebADataModule",
    "FashionMNISTDataModule",
    "MNISTDataModule",
    "SVHNDataModule",
    "TorchvisionDataModule",
]


class TorchvisionDataModule(ImageDataModule):
    """A data set read by a torchvision class from ``root``, described by its ``source`` row.

    Subclasses only set ``source`` (a :class:`~glowapp.data.catalog.TorchvisionSet`).

    Args:
        root: Directory holding the data sets in torchvision's layout (created if needed).
        download: Download the data set with torchvision if it is not found locally.
        hflip: Randomly flip training images left-right; None: the data set's default (on for
            CIFAR-10 and CelebA, off for MNIST, Fashion-MNIST and SVHN).
        **kwargs: Batch size, split and loader options; see :class:`ImageDataModule`.
    """

    source: ClassVar[TorchvisionSet]

    def __init__(
        self, root: str = "data", download: bool = True, hflip: bool | None = None, **kwargs: Any
    ) -> None:
        if not hasattr(self, "source"):
            raise TypeError(
                f"{type(self).__name__} has no data set: use a subclass that sets `source` (a "
                "glowapp.data.catalog.TorchvisionSet row), e.g. FashionMNISTDataModule"
            )
        hflip = self.source.hflip if hflip is None else hflip
        super().__init__(hflip=hflip, **kwargs)
        self.hparams["hflip"] = hflip  # the resolved value, whichever subclass took the None
        self.root = root
        self.download = download

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.source.image_shape

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    def _system_dirs(self) -> list[str]:
        """System-wide copies to unpack from when ROOT has none (``source.unpack`` sets only)."""
        return list(self.source.system_dirs)

    def _splits(self) -> TorchvisionSplits:
        """The reader of this module's files, as the module is configured now."""
        return TorchvisionSplits(
            self.source, self.root, self._system_dirs(), self.download, inform=rank_zero_info
        )

    # -- Lightning hooks -----------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Find the data set, downloading it if needed and allowed (Lightning: rank 0 only)."""
        self._splits().fetch()

    def _check_available(self) -> None:
        self._found_folder(self._splits())

    def _found_folder(self, splits: TorchvisionSplits) -> Path:
        """The folder holding every file, else :class:`DatasetNotFoundError` (no download)."""
        folder = splits.locate()
        if folder is None:
            raise splits.error(
                "it is not on disk; call prepare_data() to download it."
                if self.download
                else OFFLINE
            )
        return folder

    def _load(self, train: bool) -> Dataset[Sample]:
        """The official training (or test) split as ``(uint8 [C, H, W], int64 label)`` items."""
        splits = self._splits()
        return splits.read(self._found_folder(splits), train, self.image_shape)

    def _fit_pools(self) -> tuple[Pool, Pool]:
        base = self._load(train=True)
        return self._seeded_val_split(base, len(base))  # type: ignore[arg-type]

    def _test_pool(self) -> Pool:
        base = self._load(train=False)
        return Pool(base, torch.arange(len(base)))  # type: ignore[arg-type]


class MNISTDataModule(TorchvisionDataModule):
    """MNIST handwritten digits, 1x28x28 (no padding), 10 classes.

    Looked for in ``ROOT/MNIST/raw`` (IDX files, plain or ``.gz``), else downloaded.
    """

    source = catalog.MNIST


class FashionMNISTDataModule(TorchvisionDataModule):
    """Fashion-MNIST clothing images, 1x28x28 (no padding), 10 classes.

    Found, in order: in ``ROOT/FashionMNIST/raw`` (torchvision's layout, plain or ``.gz`` IDX
    files); in ``system_dir`` (the Debian package ``dataset-fashion-mnist``), whose files are
    unpacked into ``ROOT/FashionMNIST/raw``; else downloaded by torchvision if ``download``.

    Args:
        root: Directory holding the data sets in torchvision's layout (created if needed).
        system_dir: System-wide copy to use when ROOT has none ("" for none).
        **kwargs: ``download``, ``hflip`` (default off) and the batch, split and loader
            options; see :class:`TorchvisionDataModule` and :class:`ImageDataModule`.
    """

    source = catalog.FASHION_MNIST

    def __init__(
        self, root: str = "data", *, system_dir: str = DEBIAN_FASHION_MNIST, **kwargs: Any
    ) -> None:
        super().__init__(root, **kwargs)
        self.system_dir = system_dir

    def _system_dirs(self) -> list[str]:
        return [self.system_dir] if self.system_dir else []


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10, 3x32x32, 10 classes, from ``ROOT/cifar-10-batches-py`` (torchvision's layout)."""

    source = catalog.CIFAR10


class SVHNDataModule(TorchvisionDataModule):
    """SVHN house-number digits, 3x32x32, 10 classes (train and test splits; no ``extra``).

    Reads ``train_32x32.mat``/``test_32x32.mat`` from ``ROOT/SVHN`` (or directly from ``ROOT``,
    where ``torchvision.datasets.SVHN(ROOT)`` puts them); downloads go to ``ROOT/SVHN``.
    """

    source = catalog.SVHN


class CelebADataModule(TorchvisionDataModule):
    """CelebA aligned faces: center crop 148x148, resized to ``image_size``; labels are all 0.

    Read by ``torchvision.datasets.CelebA`` from ``ROOT/celeba`` (``img_align_celeba/`` plus the
    annotation ``.txt`` files).

    Args:
        root: Directory holding the data sets in torchvision's layout (created if needed).
        image_size: Side of the square images after crop and resize.
        **kwargs: ``download`` (needs the ``gdown`` package and Google Drive), ``hflip``
            (default on) and the batch, split and loader options; see
            :class:`TorchvisionDataModule` and :class:`ImageDataModule`.
    """

    source = catalog.CELEBA

    def __init__(self, root: str = "data", *, image_size: int = 64, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = image_size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.source.image_shape[0], self.image_size, self.image_size)
