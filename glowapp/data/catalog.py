"""The torchvision-backed data sets, one table row each.

A :class:`TorchvisionSet` row says everything :class:`~glowapp.data.splits.TorchvisionSplits`
(and so :class:`~glowapp.data.TorchvisionDataModule`) needs to find, download, read and serve a
data set: its torchvision class, how a split is selected, its image shape and classes, the files
to look for and how a user can provide them. A new data set is a new row plus a three-line
subclass of ``TorchvisionDataModule``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torchvision.datasets as tvd
from torchvision.datasets.vision import VisionDataset

__all__ = [
    "CELEBA",
    "CIFAR10",
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST",
    "MNIST",
    "SVHN",
    "Layout",
    "TorchvisionSet",
]

Layout = Literal["NHW", "NHWC", "NCHW"]
"""Axis order of a torchvision data set's in-memory uint8 ``data`` array."""


@dataclass(frozen=True)
class TorchvisionSet:
    """One data set read by a torchvision class, as a row of data.

    Attributes:
        name: Human name used in messages, e.g. ``"CIFAR-10"``.
        dataset: The torchvision class that parses the files.
        split_by: How that class selects the official split: ``"train"`` (``train=True/False``)
            or ``"split"`` (``split="train"/"test"``).
        image_shape: ``(C, H, W)`` of the images as stored.
        num_classes: Distinct labels; 1 for an unlabelled set (every label is 0).
        files: What must be on disk, relative to the folder (``"name/"`` for a folder).
        folders: Where the files are, relative to ROOT, in search order (``""`` is ROOT itself);
            downloads go to the first.
        how_to_get: How to provide the files by hand; ``{folder}``, ``{root}`` and ``{files}``
            are filled in.
        hflip: Whether training images are flipped left-right by default (not for digits).
        layout: Axis order of the class's in-memory ``data`` array, served as is without a PIL
            round trip; None to read the class's PIL images one at a time instead.
        labels: Attribute of the class holding the labels (needed with ``layout``); None: the
            set is unlabelled and every label is 0.
        folder_is_root: The class's ``root`` argument is the folder itself, not ROOT.
        unpack: The files may also be gzipped, or in a system-wide copy; they are unpacked
            into the first folder, where torchvision reads them.
        system_dirs: System-wide copies searched after ROOT by default (``unpack`` sets only).
        pre_crop: Side of a square center crop taken before resizing PIL images.
        options: Further keyword arguments of the torchvision class.
        install_hint: An extra way to provide the files (e.g. a system package), or ``""``.
        download_note: What a download needs beyond network access, or ``""``.
    """

    name: str
    dataset: type[VisionDataset]
    split_by: Literal["train", "split"]
    image_shape: tuple[int, int, int]
    num_classes: int
    files: tuple[str, ...]
    folders: tuple[str, ...]
    how_to_get: str
    hflip: bool = False
    layout: Layout | None = None
    labels: str | None = "targets"
    folder_is_root: bool = False
    unpack: bool = False
    system_dirs: tuple[str, ...] = ()
    pre_crop: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    install_hint: str = ""
    download_note: str = ""

    def __post_init__(self) -> None:
        if self.layout is not None and self.labels is None:
            raise ValueError(f"{self.name}: a set served from its arrays (layout) needs labels")
        if self.system_dirs and not self.unpack:
            raise ValueError(f"{self.name}: system-wide copies (system_dirs) need unpack=True")

    def split_kwargs(self, train: bool) -> dict[str, Any]:
        """Keyword arguments selecting the official training (or test) split, plus ``options``."""
        if self.split_by == "train":
            return {"train": train, **self.options}
        return {"split": "train" if train else "test", **self.options}

    def file_listing(self) -> str:
        """The files, for messages: ``"a, b and c"`` (``a[.gz]`` where gzipped ones will do)."""
        names = [f"{name}[.gz]" if self.unpack else name for name in self.files]
        return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four files of an MNIST-style data set, as torchvision reads them (uncompressed)."""

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
"""Where the Debian package ``dataset-fashion-mnist`` installs the four gzipped IDX files."""

# The rows. Each starts with its name, torchvision class, split_by, image_shape and num_classes.

MNIST = TorchvisionSet(
    "MNIST",
    tvd.MNIST,
    "train",
    (1, 28, 28),
    10,
    files=_IDX_FILES,
    folders=("MNIST/raw",),
    how_to_get="put {files} in {folder}",
    layout="NHW",
    unpack=True,
)

FASHION_MNIST = dataclasses.replace(
    MNIST,
    name="Fashion-MNIST",
    dataset=tvd.FashionMNIST,
    folders=("FashionMNIST/raw",),
    system_dirs=(DEBIAN_FASHION_MNIST,),
    install_hint="install the Debian package: apt-get install dataset-fashion-mnist (it puts "
    f"the files in {DEBIAN_FASHION_MNIST}, the default system_dir)",
)
"""MNIST's format and shape, other images; also found in a system-wide copy (Debian)."""

CIFAR10 = TorchvisionSet(
    "CIFAR-10",
    tvd.CIFAR10,
    "train",
    (3, 32, 32),
    10,
    files=(
        *(name for name, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list),
        tvd.CIFAR10.meta["filename"],
    ),
    folders=(tvd.CIFAR10.base_folder,),
    how_to_get="extract cifar-10-python.tar.gz (the Python version) into {root}, giving {folder}",
    hflip=True,
    layout="NHWC",
)

SVHN = TorchvisionSet(
    "SVHN",
    tvd.SVHN,
    "split",
    (3, 32, 32),
    10,
    files=tuple(tvd.SVHN.split_list[split][1] for split in ("train", "test")),
    # torchvision.datasets.SVHN(ROOT) reads ROOT itself, so files put there are found too.
    folders=("SVHN", ""),
    how_to_get="put {files} (format 2, cropped digits; not extra_32x32.mat) in {folder}",
    layout="NCHW",
    labels="labels",
    folder_is_root=True,
)

CELEBA = TorchvisionSet(
    "CelebA",
    tvd.CelebA,
    "split",
    (3, 218, 178),
    1,
    files=(
        "img_align_celeba/",
        *(name for _, _, name in tvd.CelebA.file_list if name.endswith(".txt")),
    ),
    folders=(tvd.CelebA.base_folder,),
    how_to_get="download img_align_celeba.zip and the annotation .txt files from the CelebA "
    "site, unzip the images into {folder}/img_align_celeba and put the .txt files in {folder}",
    hflip=True,
    labels=None,
    pre_crop=148,
    options={"target_type": []},
    download_note="the gdown package (Google Drive often refuses with 'quota exceeded')",
)
