"""MNIST and Fashion-MNIST: IDX files in torchvision's layout, gzipped, or a system-wide copy."""

from __future__ import annotations

import gzip
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from helpers.batches import check_batch, first_batch, split_images
from helpers.fake_datasets import make_fashion_mnist, make_fashion_mnist_debian, make_mnist

from glowapp.data import DatasetNotFoundError, FashionMNISTDataModule, MNISTDataModule
from glowapp.data.catalog import DEBIAN_FASHION_MNIST


def test_mnist_from_torchvision_layout_gz(tmp_path):
    fake = make_mnist(tmp_path, compress=True)
    dm = MNISTDataModule(root=str(tmp_path), download=False, batch_size=8)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    check_batch(first_batch(dm.train_dataloader()), (1, 28, 28), 8)
    assert len(dm.train_dataset) + len(dm.val_dataset) == 40
    assert len(dm.val_dataset) == 4
    # the test split is the official one, in file order, parsed exactly
    images, labels = first_batch(dm.test_dataloader())
    np.testing.assert_array_equal(images.numpy(), fake.test_images[:8])
    np.testing.assert_array_equal(labels.numpy(), fake.test_labels[:8])
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_fashion_mnist_from_uncompressed_root(tmp_path, fashion):
    fake = make_fashion_mnist(tmp_path, compress=False)
    dm = fashion()
    dm.prepare_data()
    dm.setup()
    everything = torch.cat([split_images(dm.train_dataset), split_images(dm.val_dataset)])
    expected = torch.from_numpy(fake.train_images)
    # train + val is a permutation of the official training split
    order = torch.cat([dm.train_dataset.indices, dm.val_dataset.indices])
    assert torch.equal(everything, expected[order])
    assert sorted(order.tolist()) == list(range(40))


def test_fashion_mnist_found_in_system_dir(tmp_path):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    fake = make_fashion_mnist_debian(system)
    root = tmp_path / "data"
    dm = FashionMNISTDataModule(
        root=str(root), system_dir=str(system), download=False, batch_size=5
    )
    dm.prepare_data()
    dm.setup("test")
    images, labels = first_batch(dm.test_dataloader())
    check_batch((images, labels), (1, 28, 28), 5)
    np.testing.assert_array_equal(images.numpy(), fake.test_images[:5])
    # unpacked into torchvision's layout, so later runs find it in ROOT
    assert (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()
    assert not list((root / "FashionMNIST" / "raw").glob(".*tmp"))


def test_root_copy_wins_over_system_dir(tmp_path):
    mine = make_fashion_mnist(tmp_path / "data", seed=10)
    make_fashion_mnist_debian(tmp_path / "system", seed=11)
    dm = FashionMNISTDataModule(
        root=str(tmp_path / "data"), system_dir=str(tmp_path / "system"), download=False
    )
    dm.setup("test")
    np.testing.assert_array_equal(dm.test_dataset[0][0].numpy(), mine.test_images[0])


def test_failed_download_becomes_dataset_not_found(tmp_path, monkeypatch):
    def offline(self):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(tvd.MNIST, "download", offline)
    dm = MNISTDataModule(root=str(tmp_path), download=True)
    with pytest.raises(DatasetNotFoundError, match="download failed") as info:
        dm.prepare_data()
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    assert "MNIST" in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="call prepare_data"):
        dm.setup("fit")


def test_download_is_torchvisions_into_roots_layout(tmp_path, monkeypatch):
    """Missing files are downloaded by the torchvision class, for both splits, into ROOT."""
    calls = []

    def fake_download(self):
        calls.append((self.root, self.train))
        make_mnist(Path(self.root), compress=False)

    monkeypatch.setattr(tvd.MNIST, "download", fake_download)
    dm = MNISTDataModule(root=str(tmp_path), download=True, batch_size=4)
    dm.prepare_data()
    assert calls == [(str(tmp_path), True), (str(tmp_path), False)]
    check_batch(first_batch(dm.test_dataloader()), (1, 28, 28), 4)


def test_corrupt_idx_file_is_reported(tmp_path):
    make_mnist(tmp_path, compress=True)
    bad = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(DatasetNotFoundError, match="could not unpack .*train-images-idx3-ubyte.gz"):
        MNISTDataModule(root=str(tmp_path), download=False).prepare_data()
    # a truncated gzip stream is reported the same way
    good = gzip.compress(b"\0" * 10000)
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetNotFoundError, match="could not unpack"):
        MNISTDataModule(root=str(tmp_path), download=False).prepare_data()


def test_unparsable_idx_file_is_reported_as_corrupt(tmp_path):
    make_mnist(tmp_path, compress=False)
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03short")
    dm = MNISTDataModule(root=str(tmp_path), download=False)
    dm.prepare_data()  # the files are there...
    with pytest.raises(DatasetNotFoundError, match="could not read them"):
        dm.setup("test")  # ...but torchvision cannot parse one


def test_real_fashion_mnist_from_debian_package(tmp_path):
    """The offline copy the quickstart trains on (Debian package ``dataset-fashion-mnist``)."""
    system = Path(DEBIAN_FASHION_MNIST)
    assert system.is_dir(), "apt-get install dataset-fashion-mnist"
    dm = FashionMNISTDataModule(
        root=str(tmp_path), download=False, batch_size=100, val_limit=300, test_limit=200
    )
    dm.prepare_data()
    dm.setup("validate")
    dm.setup("test")
    assert len(dm.train_dataset) == 54000 and len(dm.val_dataset) == 300
    check_batch(first_batch(dm.val_dataloader()), (1, 28, 28), 100)
    val_labels = torch.cat([y for _, y in dm.val_dataloader()])
    assert set(val_labels.tolist()) == set(range(10))
    test_labels = torch.cat([y for _, y in dm.test_dataloader()])
    assert len(test_labels) == 200 and set(test_labels.tolist()) == set(range(10))
    # the unpacked copy matches the package's file byte for byte
    with gzip.open(system / "t10k-labels-idx1-ubyte.gz") as f:
        packaged = f.read()
    assert (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").read_bytes() == packaged
