"""ImageFolderDataModule: a folder of your own images (flat, or one subfolder per class)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torchvision.datasets as tvd
from PIL import Image
from pytorch_lightning.utilities import rank_zero_warn
from torchvision.datasets.folder import IMG_EXTENSIONS

from glowapp.data.base import ImageDataModule, Pool
from glowapp.data.datasets import FitToSize, PILImages, fraction_count, seeded_permutation
from glowapp.data.sources import DatasetNotFoundError, not_found_message
from glowapp.images import channels_to_mode, open_image, to_mode

__all__ = ["ImageFolderDataModule", "PhotoFolder", "find_image_classes"]

FLAT_CLASS = "."
"""The single class name used when a folder has no class subfolders."""


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


def _contains_images(directory: str) -> bool:
    for _, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(_is_image_name(f) for f in files):
            return True
    return False


def find_image_classes(directory: str) -> list[str]:
    """Class subfolders of ``directory`` holding images (sorted), or ``["."]`` for a flat folder.

    Hidden entries (``.name``) are ignored. Raises :class:`DatasetNotFoundError` if the folder
    is missing or has no images at all.
    """
    if not os.path.isdir(directory):
        raise DatasetNotFoundError(
            not_found_message(
                "ImageFolder",
                [directory],
                ["pass --data.path pointing at an existing folder of images"],
                f"{directory!r} is not a directory.",
            )
        )
    with os.scandir(directory) as entries:
        subdirs = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    classes = [d for d in subdirs if _contains_images(os.path.join(directory, d))]
    if classes:
        return classes
    with os.scandir(directory) as entries:
        if any(e.is_file() and _is_image_name(e.name) for e in entries):
            return [FLAT_CLASS]
    raise DatasetNotFoundError(
        not_found_message(
            "ImageFolder",
            [directory],
            [
                "put image files (" + ", ".join(IMG_EXTENSIONS) + ") directly in the folder, "
                "or in one subfolder per class",
            ],
            f"no image files in {directory!r}.",
        )
    )


class ImageFileFilter:
    """``is_valid_file`` for torchvision's ImageFolder that remembers what it skipped."""

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def __call__(self, path: str) -> bool:
        name = os.path.basename(path)
        if _is_image_name(name):
            return True
        if not name.startswith("."):  # hidden files (.DS_Store, ._x.jpg) are skipped silently
            self.skipped.append(path)
        return False


def load_as(path: str, mode: str) -> Image.Image:
    """Loader for ImageFolder: open (raising ImageLoadError naming the path) and convert."""
    return to_mode(open_image(path), mode)


class PhotoFolder(tvd.ImageFolder):
    """torchvision's ImageFolder that also accepts a flat folder (all images get label 0).

    Class subfolders are those holding at least one image (searched recursively); without any,
    the images directly in the folder form a single class.
    """

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        classes = find_image_classes(str(directory))
        return classes, {name: index for index, name in enumerate(classes)}


class ImageFolderDataModule(ImageDataModule):
    """Any folder of images, converted to RGB (or grayscale) and fit to ``image_size`` squares.

    With class subfolders (``path/cat/*.jpg``, ``path/dog/*.png``) labels are the subfolder
    indices in sorted order; a flat folder of images is one class (label 0). Images are resized
    (shorter side) and center-cropped, exactly like :func:`glowapp.data.load_image` does. Files
    without an image extension are skipped (with a warning); an unreadable image raises
    :class:`~glowapp.data.ImageLoadError` naming it when it is loaded. Train, validation and test
    splits are seeded random fractions of the one folder.

    Args:
        path: Folder of images (flat, or one subfolder per class).
        image_size: Side of the square images after resize and center crop.
        channels: 3 for RGB, 1 for grayscale.
        test_fraction: Fraction of the images held out as the test set (seeded).
        hflip: Randomly flip training images left-right.
        **kwargs: Batch size, split and loader options; see :class:`ImageDataModule`.
    """

    def __init__(
        self,
        path: str,
        image_size: int = 64,
        channels: int = 3,
        test_fraction: float = 0.1,
        hflip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(hflip=hflip, **kwargs)
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.mode = channels_to_mode(channels)
        if not 0.0 <= test_fraction < 1.0 or self.val_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"need 0 <= test_fraction < 1 and val_fraction + test_fraction < 1, got "
                f"val_fraction={self.val_fraction}, test_fraction={test_fraction}"
            )
        self.path = path
        self.image_size = image_size
        self.channels = channels
        self.test_fraction = test_fraction
        self._pools: tuple[Pool, Pool, Pool] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @functools.cached_property
    def classes(self) -> list[str]:
        """Class subfolder names (``["."]`` for a flat folder); scans the folder."""
        return find_image_classes(self.path)

    @property
    def num_classes(self) -> int:
        """Number of class subfolders (1 for a flat folder); scans the folder."""
        return len(self.classes)

    def prepare_data(self) -> None:
        """Check that the folder exists and holds images."""
        find_image_classes(self.path)

    def _check_available(self) -> None:
        find_image_classes(self.path)

    def _split_pools(self) -> tuple[Pool, Pool, Pool]:
        if self._pools is None:
            file_filter = ImageFileFilter()
            folder = PhotoFolder(
                self.path,
                loader=functools.partial(load_as, mode=self.mode),
                is_valid_file=file_filter,
            )
            if file_filter.skipped:
                examples = ", ".join(os.path.basename(p) for p in file_filter.skipped[:3])
                rank_zero_warn(
                    f"ImageFolder {self.path!r}: skipped {len(file_filter.skipped)} file(s) "
                    f"without an image extension (e.g. {examples})."
                )
            if folder.classes != [FLAT_CLASS]:
                with os.scandir(self.path) as entries:
                    loose = sum(1 for e in entries if e.is_file() and _is_image_name(e.name))
                if loose:
                    rank_zero_warn(
                        f"ImageFolder {self.path!r}: ignoring {loose} image(s) directly in the "
                        f"folder, since it has class subfolders {folder.classes}."
                    )
            size = (self.image_size, self.image_size)
            base = PILImages(folder, FitToSize(size, self.mode))
            n = len(folder)
            order = seeded_permutation(n, self.seed)
            n_test = fraction_count(n, self.test_fraction)
            n_val = min(fraction_count(n, self.val_fraction), max(0, n - n_test - 1))
            self._pools = (
                Pool(base, order[n_test + n_val :]),
                Pool(base, order[n_test : n_test + n_val]),
                Pool(base, order[:n_test]),
            )
        return self._pools

    def _fit_pools(self) -> tuple[Pool, Pool]:
        train, val, _ = self._split_pools()
        return train, val

    def _test_pool(self) -> Pool:
        return self._split_pools()[2]
