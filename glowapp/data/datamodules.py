"""The torchvision-backed DataModules: one implementation, driven by the rows of :mod:`catalog`.

Splits: the official test split is the test set; the validation set is a seeded random
``val_fraction`` of the official training split (CelebA's official "valid" partition is not
used). The files are read by torchvision's own dataset classes; sets torchvision holds in memory
(MNIST family, CIFAR-10, SVHN) are then served straight from their uint8 arrays, without a PIL
round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import Dataset
from torchvision.datasets.vision import VisionDataset

from glowapp.data import catalog
from glowapp.data.base import ImageDataModule, Pool
from glowapp.data.catalog import DEBIAN_FASHION_MNIST, TorchvisionSet
from glowapp.data.datasets import FitToSize, PILImages, Sample, TensorImages
from glowapp.data.sources import (
    DatasetNotFoundError,
    has_files,
    not_found_message,
    unpack_files,
)
from glowapp.images import channels_to_mode

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "CIFAR10DataModule",
    "CelebADataModule",
    "FashionMNISTDataModule",
    "MNISTDataModule",
    "SVHNDataModule",
    "TorchvisionDataModule",
]

_T = TypeVar("_T")

_OFFLINE = "it is not on disk and downloading is disabled (download=False)."

_UNREADABLE = (RuntimeError, OSError, ValueError, TypeError, AssertionError, KeyError)
"""What torchvision raises on files it cannot parse (or whose checksum is wrong)."""


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

    # -- where the files are -------------------------------------------------------------------

    def _folders(self) -> list[Path]:
        """Where the files may be, in search order; downloads go to the first."""
        return [Path(self.root) / folder for folder in self.source.folders]

    def _system_dirs(self) -> list[Path]:
        """System-wide copies to unpack from when ROOT has none (``source.unpack`` sets only)."""
        return []

    def _locate(self) -> Path | None:
        """The folder holding every file (no download), or None.

        For ``source.unpack`` sets, gzipped or system-wide copies are first unpacked into the
        first folder, where torchvision reads them.
        """
        folders = self._folders()
        if self.source.unpack:
            try:
                origin = unpack_files(self.source.files, folders[0], self._system_dirs())
            except OSError as err:
                raise self._error(f"{err}; is the data root writable?") from err
            if origin is not None and origin != folders[0]:
                rank_zero_info(
                    f"Using {self.source.name} from {origin} (unpacked into {folders[0]})."
                )
        return next((f for f in folders if has_files(f, self.source.files)), None)

    def _error(self, reason: str) -> DatasetNotFoundError:
        """The error naming every place searched and every way to provide the data set."""
        source = self.source
        files = source.file_listing()
        places = [f"{folder} ({files})" for folder in self._folders()]
        places += [f"{d} (system-wide copy)" for d in self._system_dirs()]
        ways = [source.install_hint] if source.install_hint else []
        ways.append(
            source.how_to_get.format(folder=self._folders()[0], root=self.root, files=files)
        )
        needs = f" and {source.download_note}" if source.download_note else ""
        ways.append(
            f"allow downloading (download=True, e.g. --data.download true) on a machine with "
            f"network access{needs}"
        )
        return DatasetNotFoundError(not_found_message(source.name, places, ways, reason))

    # -- Lightning hooks -----------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Find the data set, downloading it if needed and allowed (Lightning: rank 0 only)."""
        if self._locate() is not None:
            return
        if not self.download:
            raise self._error(_OFFLINE)
        rank_zero_info(f"{self.source.name} not found under {self.root!r}; downloading it.")
        try:
            for train in (True, False):
                self._torchvision(self._folders()[0], train, download=True)
        except Exception as err:  # any failure to fetch means "not available"
            raise self._error(f"the download failed ({type(err).__name__}: {err}).") from err
        if self._locate() is None:
            raise self._error("the download finished but the files are still missing.")

    def _check_available(self) -> None:
        self._found_folder()

    def _found_folder(self) -> Path:
        """The folder holding every file, else :class:`DatasetNotFoundError` (no download)."""
        folder = self._locate()
        if folder is None:
            raise self._error(
                "it is not on disk; call prepare_data() to download it."
                if self.download
                else _OFFLINE
            )
        return folder

    # -- reading -------------------------------------------------------------------------------

    def _torchvision(self, folder: Path, train: bool, download: bool) -> VisionDataset:
        """The torchvision data set of one official split, its files in ``folder``."""
        root = folder if self.source.folder_is_root else Path(self.root)
        return self.source.dataset(str(root), download=download, **self.source.split_kwargs(train))

    def _load(self, train: bool) -> Dataset[Sample]:
        """The official training (or test) split as ``(uint8 [C, H, W], int64 label)`` items."""
        folder = self._found_folder()
        ds = self._read(lambda: self._torchvision(folder, train, download=False))
        source = self.source
        if source.layout is not None:
            labels = getattr(ds, str(source.labels))
            return TensorImages.from_array(ds.data, source.layout, labels)  # type: ignore[attr-defined]
        channels, height, width = self.image_shape
        to_tensor = FitToSize((height, width), channels_to_mode(channels), source.pre_crop)
        return PILImages(ds, to_tensor, fixed_label=None if source.labels else 0)

    def _read(self, make: Callable[[], _T]) -> _T:
        """Run a torchvision constructor, turning its failures into DatasetNotFoundError."""
        try:
            return make()
        except _UNREADABLE as err:
            raise self._error(
                f"files were found but torchvision could not read them "
                f"({type(err).__name__}: {err}); they may be incomplete or corrupt."
            ) from err

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

    def _system_dirs(self) -> list[Path]:
        return [Path(self.system_dir)] if self.system_dir else []


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
