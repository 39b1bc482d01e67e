"""CIFAR-10 (pickles), SVHN (.mat) and CelebA (JPEGs): read by torchvision from fake files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from helpers.batches import check_batch, first_batch
from helpers.fake_datasets import make_celeba, make_cifar10, make_svhn, skip_md5_checks
from PIL import Image

from glowapp.data import (
    CelebADataModule,
    CIFAR10DataModule,
    DatasetNotFoundError,
    SVHNDataModule,
)


@pytest.mark.parametrize(
    ("module", "make"),
    [(CIFAR10DataModule, make_cifar10), (SVHNDataModule, make_svhn)],
    ids=["cifar10", "svhn"],
)
def test_arrays_are_served_exactly(tmp_path, module, make):
    """Both official splits, parsed by torchvision, served in file order as [N, 3, 32, 32]."""
    fake = make(tmp_path)
    with skip_md5_checks():
        dm = module(root=str(tmp_path), download=False, batch_size=4)
        dm.prepare_data()
        dm.setup()
    check_batch(first_batch(dm.train_dataloader()), (3, 32, 32), 4)
    images, labels = (torch.cat(parts) for parts in zip(*dm.test_dataloader(), strict=True))
    np.testing.assert_array_equal(images.numpy(), fake.test_images)
    # SVHN stores digit 0 as label 10; it is served as 0 (the fake test labels include 0)
    np.testing.assert_array_equal(labels.numpy(), fake.test_labels)
    assert len(dm.train_dataset) + len(dm.val_dataset) == len(fake.train_images)
    index = int(dm.val_dataset.indices[0])
    np.testing.assert_array_equal(dm.val_dataset[0][0].numpy(), fake.train_images[index])


def test_cifar10_md5_check_is_torchvisions(tmp_path):
    make_cifar10(tmp_path)
    dm = CIFAR10DataModule(root=str(tmp_path), download=False)
    dm.prepare_data()  # files are present...
    with pytest.raises(DatasetNotFoundError, match="corrupt"):
        dm.setup("fit")  # ...but torchvision's integrity check rejects fake checksums


def test_svhn_files_directly_in_root(tmp_path):
    fake = make_svhn(tmp_path, subdir="")
    with skip_md5_checks():
        dm = SVHNDataModule(root=str(tmp_path), download=False, batch_size=4)
        dm.setup("test")
    assert len(dm.test_dataset) == 12
    np.testing.assert_array_equal(dm.test_dataset[3][0].numpy(), fake.test_images[3])


def test_svhn_subfolder_wins_over_root(tmp_path):
    make_svhn(tmp_path, subdir="", seed=20)
    mine = make_svhn(tmp_path, seed=21)
    with skip_md5_checks():
        dm = SVHNDataModule(root=str(tmp_path), download=False)
        dm.setup("test")
    np.testing.assert_array_equal(dm.test_dataset[0][0].numpy(), mine.test_images[0])


def test_svhn_downloads_into_its_subfolder(tmp_path, monkeypatch):
    """Downloads go to the first folder of the table row (torchvision's root for SVHN)."""
    splits = []

    def fake_download(self):
        splits.append(self.split)
        make_svhn(Path(self.root), subdir="")

    monkeypatch.setattr(tvd.SVHN, "download", fake_download)
    with skip_md5_checks():
        SVHNDataModule(root=str(tmp_path), download=True).prepare_data()
    assert splits == ["train", "test"]
    assert (tmp_path / "SVHN" / "test_32x32.mat").is_file()


def test_missing_files_are_named(tmp_path):
    for module, words in (
        (SVHNDataModule, "train_32x32.mat"),
        (CIFAR10DataModule, "cifar-10-batches-py"),
        (CelebADataModule, "img_align_celeba"),
    ):
        with pytest.raises(DatasetNotFoundError, match=words):
            module(root=str(tmp_path), download=False).prepare_data()


def test_celeba_batches(tmp_path):
    make_celeba(tmp_path)
    with skip_md5_checks():
        dm = CelebADataModule(root=str(tmp_path), download=False, image_size=32, batch_size=4)
        dm.prepare_data()
        dm.setup()
    images, labels = first_batch(dm.train_dataloader())
    check_batch((images, labels), (3, 32, 32), 4)
    assert labels.tolist() == [0, 0, 0, 0]
    assert len(dm.train_dataset) + len(dm.val_dataset) == 20  # official train partition
    assert len(dm.test_dataset) == 8  # official test partition
    pickle.dumps(dm.train_dataset)  # spawn-safe for DataLoader workers


def test_celeba_crops_the_face_before_resizing(tmp_path):
    """The 148x148 centre of each 178x218 photo is what gets resized (not the whole photo)."""
    base = make_celeba(tmp_path)  # images 27..34 form the test partition
    photo = base / "img_align_celeba" / "000027.jpg"
    pixels = np.zeros((218, 178, 3), dtype=np.uint8)
    pixels[35:183, 15:163] = 255  # exactly the centre crop is white
    Image.fromarray(pixels).save(photo, quality=100)
    with skip_md5_checks():
        dm = CelebADataModule(root=str(tmp_path), download=False, image_size=16)
        dm.setup("test")
    image = dm.test_dataset[0][0]
    assert image.shape == (3, 16, 16)
    assert int(image[:, 1:-1, 1:-1].min()) > 200  # no black border made it in
