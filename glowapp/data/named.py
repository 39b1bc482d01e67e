"""Data sets by name, for the inference tools: ``load_named_split("fashion-mnist", "test")``.

:data:`DATA_SETS` maps the names the command lines take (``--data fashion-mnist``) to catalog
rows; :func:`load_named_split` reads one official split of such a set as two tensors, and
:func:`parse_split_spec` reads a ``NAME:SPLIT`` spec such as ``fashion-mnist:test``. Nothing here
imports Lightning.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from glowapp.data.catalog import CIFAR10, FASHION_MNIST, MNIST, SVHN, TorchvisionSet
from glowapp.data.datasets import TensorImages
from glowapp.data.splits import TorchvisionSplits

__all__ = ["DATA_SETS", "SPLITS", "load_named_split", "parse_split_spec"]

DATA_SETS: dict[str, TorchvisionSet] = {
    "fashion-mnist": FASHION_MNIST,
    "mnist": MNIST,
    "cifar10": CIFAR10,
    "svhn": SVHN,
}
"""The data sets the tools name, each served from its in-memory uint8 arrays (a ``layout``)."""

SPLITS = ("train", "test")
"""The official splits a name can be paired with."""


def _row(name: str) -> TorchvisionSet:
    """The catalog row of ``name``, else a ValueError listing the names of :data:`DATA_SETS`."""
    if name not in DATA_SETS:
        raise ValueError(f"unknown data set {name!r}; the data sets are: {', '.join(DATA_SETS)}")
    return DATA_SETS[name]


def _check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a ValueError listing them."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the splits are: {', '.join(SPLITS)}")
    return split


def load_named_split(
    name: str,
    split: str = "test",
    root: str | Path = "data",
    limit: int | None = None,
    *,
    download: bool = False,
) -> tuple[Tensor, Tensor]:
    """The first ``limit`` items (all for None) of a named data set's official split, in order.

    Files are found as the DataModules find them: under ``root`` in torchvision's layout
    (gzipped IDX files unpacked), or in a system-wide copy (Fashion-MNIST: the Debian package's
    folder), else downloaded if ``download``.

    Args:
        name: A key of :data:`DATA_SETS`, e.g. ``"fashion-mnist"``.
        split: ``"train"`` or ``"test"``.
        root: Directory holding the data sets in torchvision's layout.
        limit: Keep only the first N items; None for all.
        download: Download the data set with torchvision if it is not found locally.

    Returns:
        uint8 images ``[N, C, H, W]`` (0..255) and int64 labels ``[N]``.

    Raises:
        ValueError: an unknown name or split, or a negative limit.
        DatasetNotFoundError: the files are missing (and could not be downloaded) or unreadable.
    """
    source = _row(name)
    train = _check_split(split) == "train"
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    dataset = TorchvisionSplits(source, root, source.system_dirs, download).load(train)
    assert isinstance(dataset, TensorImages), f"{source.name} has no layout"
    return dataset.images[:limit], dataset.labels[:limit]


def parse_split_spec(text: str) -> tuple[str, str]:
    """``(name, split)`` of ``"NAME:SPLIT"`` (e.g. ``"fashion-mnist:test"``) or ``"NAME"`` (test).

    Raises:
        ValueError: the text is not of either form, or names an unknown data set or split; the
            message lists the accepted forms, names and splits.
    """
    name, colon, split = text.partition(":")
    if not colon:
        split = "test"
    if name in DATA_SETS and split in SPLITS:
        return name, split
    raise ValueError(
        f"bad data split {text!r}: expected NAME or NAME:SPLIT, NAME one of "
        f"{', '.join(DATA_SETS)} and SPLIT one of {', '.join(SPLITS)} (NAME alone means "
        "NAME:test), e.g. fashion-mnist:test"
    )
