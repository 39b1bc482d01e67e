"""LightningDataModules serving uint8 image batches for the flows.

Every module yields batches ``(images, labels)``: ``images`` is a uint8 tensor ``[B, C, H, W]``
with values 0..255 (the model dequantizes itself), ``labels`` int64 ``[B]``. ``image_shape`` and
``num_classes`` are known right after ``__init__``, before any data is touched, so LightningCLI
can link them to the model.

Splits: the official test split is the test set; the validation set is a seeded random
``val_fraction`` of the official training split (ImageFolder: seeded ``val_fraction`` and
``test_fraction`` of the one folder). ``*_limit`` arguments keep only the first N of a split.

The files are read by torchvision's own dataset classes; small in-memory sets (MNIST family,
CIFAR-10, SVHN) are then served straight from their uint8 arrays, without a PIL round trip.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import pytorch_lightning as pl
import torch
import torch.distributed as dist
import torchvision.datasets as tvd
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from glowapp.data.datasets import (
    EpochSeededSampler,
    FitToSize,
    PILImages,
    Sample,
    SplitView,
    TensorImages,
    fraction_count,
    seeded_permutation,
)
from glowapp.data.sources import DatasetNotFoundError, install_idx_files, not_found_message

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "MNISTDataModule",
    "Pool",
    "SVHNDataModule",
    "TorchvisionDataModule",
]

# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------


class Pool(NamedTuple):
    """Where a DataModule's splits come from: a base dataset and the indices of each split."""

    base: Dataset[Sample]
    indices: torch.Tensor


class ImageDataModule(pl.LightningDataModule, ABC):
    """Base class of the glowapp DataModules: uint8 image batches, seeded splits, limits.

    Subclasses set ``image_shape``/``num_classes`` and implement :meth:`_fit_pools` (train and
    validation) and :meth:`_test_pool`.

    Args:
        batch_size: Images per batch (per device under DDP).
        num_workers: DataLoader worker processes (0 loads in the main process).
        val_fraction: Fraction of the training split held out for validation (seeded).
        seed: Seed of the train/validation split (independent of the global seed).
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
    return indices if limit is None else indices[:limit]


# --------------------------------------------------------------------------------------------
# torchvision data sets
# --------------------------------------------------------------------------------------------


class TorchvisionDataModule(ImageDataModule):
    """A data set read by one of torchvision's classes from ``root`` (downloaded if allowed).

    Args:
        root: Directory holding the data sets in torchvision's layout (created if needed).
        download: Download the data set with torchvision if it is not found locally.
        **kwargs: Batch size, split and loader options; see :class:`ImageDataModule`.
    """

    dataset_name: ClassVar[str]
    """Human name used in messages, e.g. ``"Fashion-MNIST"``."""

    def __init__(self, root: str = "data", download: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.download = download

    # Subclasses describe where the files go and how to get them.

    @abstractmethod
    def _found(self) -> bool:
        """Whether the files are where torchvision reads them (no download; cheap).

        May first put them there from a local copy (e.g. unpack Debian's Fashion-MNIST).
        """

    @abstractmethod
    def _places(self) -> list[str]:
        """Where :meth:`_found` looks, for error messages."""

    @abstractmethod
    def _ways(self) -> list[str]:
        """How a user can provide the data set, for error messages."""

    @abstractmethod
    def _download(self) -> None:
        """Download with torchvision (called only when not found and ``download`` is True)."""

    @abstractmethod
    def _load(self, train: bool) -> Dataset[Sample]:
        """Read the official training (or test) split with torchvision."""

    def _error(self, reason: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            not_found_message(self.dataset_name, self._places(), self._ways(), reason)
        )

    def prepare_data(self) -> None:
        """Find the data set, downloading it if needed and allowed (Lightning: rank 0 only)."""
        if self._found():
            return
        if not self.download:
            raise self._error("it is not on disk and downloading is disabled (download=False).")
        rank_zero_info(f"{self.dataset_name} not found under {self.root!r}; downloading it.")
        try:
            self._download()
        except Exception as err:  # any failure to fetch means "not available"
            raise self._error(f"the download failed ({type(err).__name__}: {err}).") from err
        if not self._found():
            raise self._error("the download finished but the files are still missing.")

    def _check_available(self) -> None:
        if not self._found():
            if self.download:
                raise self._error("it is not on disk; call prepare_data() to download it.")
            raise self._error("it is not on disk and downloading is disabled (download=False).")

    def _read(self, make: Callable[[], Any]) -> Any:
        """Run a torchvision constructor, turning its failures into DatasetNotFoundError."""
        try:
            return make()
        except (RuntimeError, OSError, ValueError, TypeError, AssertionError, KeyError) as err:
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


class _IDXDataModule(TorchvisionDataModule):
    """MNIST-style data sets: four IDX files read by a torchvision MNIST class."""

    torchvision_class: ClassVar[type[tvd.MNIST]]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 28, 28)

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def raw_dir(self) -> Path:
        """Where torchvision reads the files: ``ROOT/<ClassName>/raw``."""
        return Path(self.root) / self.torchvision_class.__name__ / "raw"

    def _system_dirs(self) -> list[Path]:
        return []

    def _found(self) -> bool:
        try:
            source = install_idx_files(self.raw_dir, self._system_dirs())
        except OSError as err:
            raise self._error(f"{err}; is the data root writable?") from err
        if source is not None and source != self.raw_dir:
            rank_zero_info(
                f"Using {self.dataset_name} from {source} (unpacked into {self.raw_dir})."
            )
        return source is not None

    def _places(self) -> list[str]:
        places = [f"{self.raw_dir} (train-images-idx3-ubyte[.gz] and the other three IDX files)"]
        places += [f"{d} (system-wide copy)" for d in self._system_dirs()]
        return places

    def _download(self) -> None:
        for train in (True, False):
            self.torchvision_class(self.root, train=train, download=True)

    def _load(self, train: bool) -> Dataset[Sample]:
        ds = self._read(lambda: self.torchvision_class(self.root, train=train, download=False))
        return TensorImages(ds.data.unsqueeze(1).contiguous(), ds.targets)


class MNISTDataModule(_IDXDataModule):
    """MNIST handwritten digits, 1x28x28 (no padding), 10 classes.

    Looked for in ``ROOT/MNIST/raw`` (IDX files, plain or ``.gz``), else downloaded.

    Args:
        root: Directory holding the data sets in torchvision's layout (created if needed).
        download: Download MNIST with torchvision if it is not found locally.
        hflip: Randomly flip training images left-right (off: digits are not symmetric).
        **kwargs: Batch size, split and loader options; see :class:`ImageDataModule`.
    """

    dataset_name = "MNIST"
    torchvision_class = tvd.MNIST

    def __init__(
        self, root: str = "data", download: bool = True, hflip: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(root=root, download=download, hflip=hflip, **kwargs)

    def _ways(self) -> list[str]:
        return [
            f"put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
            f"and t10k-labels-idx1-ubyte.gz (or the unpacked files) under {self.raw_dir}",
            "allow downloading (download=True, e.g. --data.download true) on a machine with network",
        ]


DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
"""Where the Debian package ``dataset-fashion-mnist`` installs the four gzipped IDX files."""


class FashionMNISTDataModule(_IDXDataModule):
    """Fashion-MNIST clothing images, 1x28x28 (no padding), 10 classes.

    Found, in order: in ``ROOT/FashionMNIST/raw`` (torchvision's layout, plain or ``.gz`` IDX
    files); in ``system_dir`` (the Debian package ``dataset-fashion-mnist``), whose files are
    unpacked into ``ROOT/FashionMNIST/raw``; else downloaded by torchvision if ``download``.

    Args:
        root: Directory holding the data sets in torchvision's layout (created if needed).
        download: Download Fashion-MNIST with torchvision if it is not found locally.
        system_dir: System-wide copy to use when ROOT has none (Debian: dataset-fashion-mnist).
        hflip: Randomly flip training images left-right.
        **kwargs: Batch size, split and loader options; see :class:`ImageDataModule`.
    """

    dataset_name = "Fashion-MNIST"
    torchvision_class = tvd.FashionMNIST

    def __init__(
        self,
        root: str = "data",
        download: bool = True,
        system_dir: str = DEBIAN_FASHION_MNIST,
        hflip: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, download=download, hflip=hflip, **kwargs)
        self.system_dir = system_dir

    def _system_dirs(self) -> list[Path]:
        return [Path(self.system_dir)] if self.system_dir else []

    def _ways(self) -> list[str]:
        return [
            "install the Debian package: apt-get install dataset-fashion-mnist (it puts the "
            f"files in {DEBIAN_FASHION_MNIST}"
            + ("" if self.system_dir == DEBIAN_FASHION_MNIST else ", the default system_dir")
            + ")",
            f"put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
            f"and t10k-labels-idx1-ubyte.gz (or the unpacked files) under {self.raw_dir}",
            "allow downloading (download=True, e.g. --data.download true) on a machine with network",
        ]


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10, 3x32x32, 10 classes, from ``ROOT/cifar-10-batches-py`` (torchvision's layout).

    Args:
        root: Directory holding the data sets in torchvision's layout (created if needed).
        download: Download CIFAR-10 with torchvision if it is not found locally.
        hflip: Randomly flip training images left-right.
        **kwargs: Batch size, split and loader options; see :class:`ImageDataModule`.
    """

    dataset_name = "CIFAR-10"

    def __init__(
        self, root: str = "data", download: bool = True, hflip: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(root=root, download=download, hflip=hflip, **kwargs)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, 32, 32)

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def data_dir(self) -> Path:
        """``ROOT/cifar-10-batches-py``."""
        return Path(self.root) / tvd.CIFAR10.base_folder

    def _found(self) -> bool:
        names = [name for name, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list]
        names.append(tvd.CIFAR10.meta["filename"])
        return all((self.data_dir / name).is_file() for name in names)

    def _places(self) -> list[str]:
        return [f"{self.data_dir} (data_batch_1..5, test_batch, batches.meta)"]

    def _ways(self) -> list[str]:
        return [
            f"extract cifar-10-python.tar.gz (the Python version) into {self.root}, giving "
            f"{self.data_dir}",
            "allow downloading (download=True, e.g. --data.download true) on a machine with network",
        ]

    def _download(self) -> None:
        tvd.CIFAR10(self.root, train=True, download=True)

    def _load(self, train: bool) -> Dataset[Sample]:
        ds = self._read(lambda: tvd.CIFAR10(self.root, train=train, download=False))
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return TensorImages(images, torch.as_tensor(ds.targets))


class SVHNDataModule(TorchvisionDataModule):
    """SVHN house-number digits, 3x32x32, 10 classes (train and test splits; no ``extra``).

    Reads ``train_32x32.mat``/``test_32x32.mat`` from ``ROOT/SVHN`` (or directly from ``ROOT``,
    where ``torchvision.datasets.SVHN(ROOT)`` puts them); downloads go to ``ROOT/SVHN``.

    Args:
        root: Directory holding the data sets (created if needed).
        download: Download SVHN with torchvision if it is not found locally.
        hflip: Randomly flip training images left-right (off: digits are not symmetric).
        **kwargs: Batch size, split and loader options; see :class:`ImageDataModule`.
    """

    dataset_name = "SVHN"
    _files = ("train_32x32.mat", "test_32x32.mat")

    def __init__(
        self, root: str = "data", download: bool = True, hflip: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(root=root, download=download, hflip=hflip, **kwargs)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, 32, 32)

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def data_dir(self) -> Path:
        """``ROOT/SVHN`` unless the files sit directly in ``ROOT``."""
        preferred = Path(self.root) / "SVHN"
        if not self._has_files(preferred) and self._has_files(Path(self.root)):
            return Path(self.root)
        return preferred

    def _has_files(self, directory: Path) -> bool:
        return all((directory / name).is_file() for name in self._files)

    def _found(self) -> bool:
        return self._has_files(self.data_dir)

    def _places(self) -> list[str]:
        return [f"{Path(self.root) / 'SVHN'} and {self.root} (train_32x32.mat, test_32x32.mat)"]

    def _ways(self) -> list[str]:
        return [
            f"put train_32x32.mat and test_32x32.mat (format 2, cropped digits) under "
            f"{Path(self.root) / 'SVHN'}",
            "allow downloading (download=True, e.g. --data.download true) on a machine with network",
        ]

    def _download(self) -> None:
        for split in ("train", "test"):
            tvd.SVHN(str(Path(self.root) / "SVHN"), split=split, download=True)

    def _load(self, train: bool) -> Dataset[Sample]:
        split = "train" if train else "test"
        ds = self._read(lambda: tvd.SVHN(str(self.data_dir), split=split, download=False))
        images = torch.from_numpy(ds.data).contiguous()  # torchvision already made it N,C,H,W
        return TensorImages(images, torch.as_tensor(ds.labels))


class CelebADataModule(TorchvisionDataModule):
    """CelebA aligned faces: center crop 148x148, resized to ``image_size``; labels are all 0.

    Read by ``torchvision.datasets.CelebA`` from ``ROOT/celeba`` (``img_align_celeba/`` plus the
    annotation ``.txt`` files). The official test partition is the test set; validation is a
    seeded ``val_fraction`` of the official training partition (the official "valid" partition
    is not used).

    Args:
        root: Directory holding the data sets in torchvision's layout (created if needed).
        download: Download CelebA with torchvision (needs the ``gdown`` package and Google Drive).
        image_size: Side of the square images after crop and resize.
        hflip: Randomly flip training images left-right.
        **kwargs: Batch size, split and loader options; see :class:`ImageDataModule`.
    """

    dataset_name = "CelebA"
    crop_size: ClassVar[int] = 148

    def __init__(
        self,
        root: str = "data",
        download: bool = True,
        image_size: int = 64,
        hflip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, download=download, hflip=hflip, **kwargs)
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = image_size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        return 1

    @property
    def data_dir(self) -> Path:
        """``ROOT/celeba``."""
        return Path(self.root) / tvd.CelebA.base_folder

    def _found(self) -> bool:
        texts = [name for _, _, name in tvd.CelebA.file_list if name.endswith(".txt")]
        return (self.data_dir / "img_align_celeba").is_dir() and all(
            (self.data_dir / name).is_file() for name in texts
        )

    def _places(self) -> list[str]:
        texts = ", ".join(name for _, _, name in tvd.CelebA.file_list if name.endswith(".txt"))
        return [f"{self.data_dir} (img_align_celeba/ and {texts})"]

    def _ways(self) -> list[str]:
        return [
            f"download img_align_celeba.zip and the annotation .txt files from the CelebA site, "
            f"unzip the images into {self.data_dir / 'img_align_celeba'} and put the .txt files "
            f"in {self.data_dir}",
            "allow downloading (download=True) with network access and the gdown package "
            "(Google Drive often refuses with 'quota exceeded')",
        ]

    def _download(self) -> None:
        tvd.CelebA(self.root, split="train", target_type=[], download=True)

    def _load(self, train: bool) -> Dataset[Sample]:
        split = "train" if train else "test"
        ds = self._read(lambda: tvd.CelebA(self.root, split=split, target_type=[], download=False))
        size = (self.image_size, self.image_size)
        return PILImages(ds, FitToSize(size, "RGB", pre_crop=self.crop_size), fixed_label=0)
