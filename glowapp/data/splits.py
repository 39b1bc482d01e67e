"""Reading the official splits of a torchvision data set, without Lightning.

:class:`TorchvisionSplits` finds a :class:`~glowapp.data.catalog.TorchvisionSet`'s files under a
data root (unpacking gzipped or system-wide copies where the row allows it), downloads them if
allowed, and reads the training or test split with torchvision's own class. Sets torchvision
holds in memory (MNIST family, CIFAR-10, SVHN) are served straight from their uint8 arrays,
without a PIL round trip. Whatever goes wrong becomes one :class:`DatasetNotFoundError` naming
every place searched and every way to provide the data set.

:class:`~glowapp.data.TorchvisionDataModule` trains on it; the inference tools read named splits
through it (:func:`glowapp.data.load_named_split`) without importing Lightning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from torch.utils.data import Dataset
from torchvision.datasets.vision import VisionDataset

from glowapp.data.catalog import TorchvisionSet
from glowapp.data.datasets import FitToSize, PILImages, Sample, TensorImages
from glowapp.data.sources import (
    DatasetNotFoundError,
    has_files,
    not_found_message,
    unpack_files,
)
from glowapp.images import channels_to_mode

__all__ = ["OFFLINE", "TorchvisionSplits"]

OFFLINE = "it is not on disk and downloading is disabled (download=False)."
"""The reason given when a data set is missing and may not be downloaded."""

_UNREADABLE = (RuntimeError, OSError, ValueError, TypeError, AssertionError, KeyError)
"""What torchvision raises on files it cannot parse (or whose checksum is wrong)."""

_log = logging.getLogger(__name__)


class TorchvisionSplits:
    """The official splits of the data set ``source``, read from under ``root``.

    Args:
        source: The catalog row of the data set.
        root: Directory holding the data sets in torchvision's layout.
        system_dirs: System-wide copies to unpack from when ``root`` has none (``source.unpack``
            sets only), in search order.
        download: Download the data set with torchvision if it is not found locally.
        inform: Called with a line when a system-wide copy is used or a download starts (e.g.
            a DataModule passes Lightning's ``rank_zero_info``); by default logged at INFO.
    """

    def __init__(
        self,
        source: TorchvisionSet,
        root: str | Path,
        system_dirs: Sequence[str | Path] = (),
        download: bool = False,
        inform: Callable[[str], None] = _log.info,
    ) -> None:
        self.source = source
        self.root = Path(root)
        self.system_dirs = [Path(directory) for directory in system_dirs]
        self.download = download
        self.inform = inform

    def folders(self) -> list[Path]:
        """Where the files may be, in search order; downloads go to the first."""
        return [self.root / folder for folder in self.source.folders]

    def locate(self) -> Path | None:
        """The folder holding every file (no download), or None.

        For ``source.unpack`` sets, gzipped or system-wide copies are first unpacked into the
        first folder, where torchvision reads them.
        """
        folders = self.folders()
        if self.source.unpack:
            try:
                origin = unpack_files(self.source.files, folders[0], self.system_dirs)
            except OSError as err:
                raise self.error(f"{err}; is the data root writable?") from err
            if origin is not None and origin != folders[0]:
                self.inform(f"Using {self.source.name} from {origin} (unpacked into {folders[0]}).")
        return next((f for f in folders if has_files(f, self.source.files)), None)

    def fetch(self) -> Path:
        """The folder holding every file, downloading the data set first if needed and allowed."""
        folder = self.locate()
        if folder is not None:
            return folder
        if not self.download:
            raise self.error(OFFLINE)
        self.inform(f"{self.source.name} not found under {str(self.root)!r}; downloading it.")
        try:
            for train in (True, False):
                self._open(self.folders()[0], train, download=True)
        except Exception as err:  # any failure to fetch means "not available"
            raise self.error(f"the download failed ({type(err).__name__}: {err}).") from err
        folder = self.locate()
        if folder is None:
            raise self.error("the download finished but the files are still missing.")
        return folder

    def read(
        self, folder: Path, train: bool, image_shape: tuple[int, int, int] | None = None
    ) -> Dataset[Sample]:
        """The official training (or test) split in ``folder`` as ``(uint8 [C, H, W], int64)``.

        Args:
            folder: The folder holding the files (from :meth:`locate` or :meth:`fetch`).
            train: The training split, else the test split.
            image_shape: ``(C, H, W)`` to fit the images of sets read as PIL images to (e.g.
                CelebA at a chosen size); None for the row's. Sets served from their arrays
                keep the row's shape.
        """
        source = self.source
        try:
            dataset = self._open(folder, train, download=False)
        except _UNREADABLE as err:
            raise self.error(
                f"files were found but torchvision could not read them "
                f"({type(err).__name__}: {err}); they may be incomplete or corrupt."
            ) from err
        if source.layout is not None:
            labels = getattr(dataset, str(source.labels))
            return TensorImages.from_array(dataset.data, source.layout, labels)  # type: ignore[attr-defined]
        channels, height, width = image_shape or source.image_shape
        to_tensor = FitToSize((height, width), channels_to_mode(channels), source.pre_crop)
        return PILImages(dataset, to_tensor, fixed_label=None if source.labels else 0)

    def load(self, train: bool) -> Dataset[Sample]:
        """The official training (or test) split: :meth:`fetch`, then :meth:`read`."""
        return self.read(self.fetch(), train)

    def error(self, reason: str) -> DatasetNotFoundError:
        """The error naming every place searched and every way to provide the data set."""
        source = self.source
        files = source.file_listing()
        folders = self.folders()
        places = [f"{folder} ({files})" for folder in folders]
        places += [f"{directory} (system-wide copy)" for directory in self.system_dirs]
        ways = [source.install_hint] if source.install_hint else []
        ways.append(source.how_to_get.format(folder=folders[0], root=self.root, files=files))
        needs = f" and {source.download_note}" if source.download_note else ""
        ways.append(
            f"allow downloading (download=True, e.g. --data.download true) on a machine with "
            f"network access{needs}"
        )
        return DatasetNotFoundError(not_found_message(source.name, places, ways, reason))

    def _open(self, folder: Path, train: bool, download: bool) -> VisionDataset:
        """The torchvision data set of one official split, its files in ``folder``."""
        root = folder if self.source.folder_is_root else self.root
        return self.source.dataset(str(root), download=download, **self.source.split_kwargs(train))
