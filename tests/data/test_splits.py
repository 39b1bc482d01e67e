"""Named splits read without Lightning (glowapp.data.named and glowapp.data.splits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.fake_datasets import (
    make_cifar10,
    make_fashion_mnist,
    make_fashion_mnist_debian,
    make_mnist,
    make_svhn,
    skip_md5_checks,
)

from glowapp.data import (
    DATA_SETS,
    DatasetNotFoundError,
    TorchvisionSplits,
    load_named_split,
    parse_split_spec,
)
from glowapp.data.catalog import DEBIAN_FASHION_MNIST, FASHION_MNIST
from glowapp.data.datasets import TensorImages

REPO = Path(__file__).resolve().parents[2]


def check_tensors(images: torch.Tensor, labels: torch.Tensor, shape: tuple[int, ...]) -> None:
    """uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``, ``shape`` being ``(N, C, H, W)``."""
    assert images.dtype == torch.uint8 and tuple(images.shape) == shape
    assert labels.dtype == torch.int64 and tuple(labels.shape) == shape[:1]


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_both_splits_of_an_idx_set_in_file_order(tmp_path, compress):
    fake = make_mnist(tmp_path, compress=compress)
    for split, images, labels in (
        ("train", fake.train_images, fake.train_labels),
        ("test", fake.test_images, fake.test_labels),
    ):
        loaded_images, loaded_labels = load_named_split("mnist", split, tmp_path)
        check_tensors(loaded_images, loaded_labels, images.shape)
        np.testing.assert_array_equal(loaded_images.numpy(), images)
        np.testing.assert_array_equal(loaded_labels.numpy(), labels)


def test_the_split_defaults_to_test_and_root_copies_win(tmp_path):
    """Files under ROOT are read before the system-wide (Debian) copy of Fashion-MNIST."""
    fake = make_fashion_mnist(tmp_path)
    images, labels = load_named_split("fashion-mnist", root=str(tmp_path))
    np.testing.assert_array_equal(images.numpy(), fake.test_images)
    np.testing.assert_array_equal(labels.numpy(), fake.test_labels)


@pytest.mark.parametrize(
    ("name", "make"), [("cifar10", make_cifar10), ("svhn", make_svhn)], ids=["cifar10", "svhn"]
)
def test_colour_sets_are_served_from_their_arrays(tmp_path, name, make):
    fake = make(tmp_path)
    with skip_md5_checks():
        images, labels = load_named_split(name, "test", tmp_path, limit=5)
    check_tensors(images, labels, (5, 3, 32, 32))
    np.testing.assert_array_equal(images.numpy(), fake.test_images[:5])
    np.testing.assert_array_equal(labels.numpy(), fake.test_labels[:5])


@pytest.mark.parametrize(("limit", "count"), [(7, 7), (0, 0), (20, 20), (1000, 20)])
def test_limit_keeps_the_first_items(tmp_path, limit, count):
    fake = make_mnist(tmp_path)
    images, labels = load_named_split("mnist", "test", tmp_path, limit=limit)
    check_tensors(images, labels, (count, 1, 28, 28))
    np.testing.assert_array_equal(images.numpy(), fake.test_images[:count])
    np.testing.assert_array_equal(labels.numpy(), fake.test_labels[:count])


def test_a_negative_limit_is_rejected(tmp_path):
    make_mnist(tmp_path)
    with pytest.raises(ValueError, match="limit must be >= 0 or None, got -1"):
        load_named_split("mnist", "test", tmp_path, limit=-1)


def test_unknown_names_and_splits_list_the_valid_ones(tmp_path):
    with pytest.raises(ValueError) as info:
        load_named_split("imagenet", "test", tmp_path)
    assert str(info.value) == (
        "unknown data set 'imagenet'; the data sets are: fashion-mnist, mnist, cifar10, svhn"
    )
    with pytest.raises(ValueError) as info:
        load_named_split("mnist", "valid", tmp_path)
    assert str(info.value) == "unknown split 'valid'; the splits are: train, test"


def test_missing_files_are_the_data_set_error_with_its_instructions(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_named_split("mnist", "test", tmp_path / "data")
    lines = str(info.value).splitlines()
    assert lines[0] == (
        "MNIST data set not found: it is not on disk and downloading is disabled (download=False)."
    )
    assert lines[2].startswith(f"  - {tmp_path / 'data' / 'MNIST' / 'raw'} (")
    assert lines[-2].startswith("  - put train-images-idx3-ubyte[.gz]")


def test_every_named_set_is_served_from_its_arrays():
    """What load_named_split relies on: each row of the table has an in-memory layout."""
    assert list(DATA_SETS) == ["fashion-mnist", "mnist", "cifar10", "svhn"]
    assert all(row.layout is not None for row in DATA_SETS.values())
    assert DATA_SETS["fashion-mnist"].system_dirs == (DEBIAN_FASHION_MNIST,)


def test_a_system_wide_copy_is_unpacked_and_reported(tmp_path):
    fake = make_fashion_mnist_debian(tmp_path / "system")
    lines: list[str] = []
    splits = TorchvisionSplits(
        FASHION_MNIST, tmp_path / "data", [tmp_path / "system"], inform=lines.append
    )
    dataset = splits.load(train=True)
    assert isinstance(dataset, TensorImages)
    np.testing.assert_array_equal(dataset.images.numpy(), fake.train_images)
    assert lines == [
        f"Using Fashion-MNIST from {tmp_path / 'system'} (unpacked into "
        f"{tmp_path / 'data' / 'FashionMNIST' / 'raw'})."
    ]
    assert (tmp_path / "data" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fashion-mnist:test", ("fashion-mnist", "test")),
        ("mnist:train", ("mnist", "train")),
        ("svhn", ("svhn", "test")),
    ],
)
def test_split_specs(text, expected):
    assert parse_split_spec(text) == expected


@pytest.mark.parametrize(
    "text", ["", "imagenet", "mnist:", "mnist:valid", ":test", "mnist:test:x", "MNIST:test"]
)
def test_bad_split_specs_say_which_forms_are_accepted(text):
    with pytest.raises(ValueError) as info:
        parse_split_spec(text)
    assert str(info.value) == (
        f"bad data split {text!r}: expected NAME or NAME:SPLIT, NAME one of fashion-mnist, "
        "mnist, cifar10, svhn and SPLIT one of train, test (NAME alone means NAME:test), e.g. "
        "fashion-mnist:test"
    )


def test_real_fashion_mnist_test_split_from_the_debian_package(tmp_path):
    """The offline copy CI installs (Debian package ``dataset-fashion-mnist``)."""
    assert Path(DEBIAN_FASHION_MNIST).is_dir(), "apt-get install dataset-fashion-mnist"
    images, labels = load_named_split("fashion-mnist", "test", tmp_path)
    check_tensors(images, labels, (10_000, 1, 28, 28))
    assert torch.bincount(labels).tolist() == [1000] * 10


def test_named_splits_do_not_import_lightning():
    """Only a DataModule, on first use, imports Lightning."""
    code = (
        "import glowapp.data, sys; "
        "from glowapp.data import load_named_split, DATA_SETS, DatasetNotFoundError; "
        "assert 'pytorch_lightning' not in sys.modules, 'pytorch_lightning was imported'; "
        "from glowapp.data import FashionMNISTDataModule; "
        "assert 'pytorch_lightning' in sys.modules"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
