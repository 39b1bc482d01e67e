"""Tests of glowapp.data: DataModules on fake data in the real formats, discovery, errors, images."""

from __future__ import annotations

import gzip
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torchvision.datasets as tvd
from fake_datasets import (
    make_celeba,
    make_cifar10,
    make_fashion_mnist,
    make_fashion_mnist_debian,
    make_image_folder,
    make_mnist,
    make_svhn,
    skip_md5_checks,
)
from PIL import Image

from glowapp.data import (
    CelebADataModule,
    CIFAR10DataModule,
    DatasetNotFoundError,
    FashionMNISTDataModule,
    ImageDataModule,
    ImageFolderDataModule,
    ImageLoadError,
    MNISTDataModule,
    SVHNDataModule,
    load_image,
)
from glowapp.data.datasets import EpochSeededSampler

REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def fashion(root: Path, **kwargs) -> FashionMNISTDataModule:
    """A Fashion-MNIST module that can only see ``root`` (no system copy, no network)."""
    kwargs.setdefault("batch_size", 4)
    return FashionMNISTDataModule(root=str(root), download=False, system_dir="", **kwargs)


def first_batch(loader) -> tuple[torch.Tensor, torch.Tensor]:
    return next(iter(loader))


def check_batch(batch, shape: tuple[int, int, int], batch_size: int) -> None:
    images, labels = batch
    assert images.dtype == torch.uint8
    assert tuple(images.shape) == (batch_size, *shape)
    assert labels.dtype == torch.int64
    assert tuple(labels.shape) == (batch_size,)


def split_images(dataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


# -- shapes known without data ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "shape", "classes"),
    [
        (MNISTDataModule(root="/nonexistent"), (1, 28, 28), 10),
        (FashionMNISTDataModule(root="/nonexistent"), (1, 28, 28), 10),
        (CIFAR10DataModule(root="/nonexistent"), (3, 32, 32), 10),
        (SVHNDataModule(root="/nonexistent"), (3, 32, 32), 10),
        (CelebADataModule(root="/nonexistent"), (3, 64, 64), 1),
        (CelebADataModule(root="/nonexistent", image_size=32), (3, 32, 32), 1),
    ],
)
def test_shape_and_classes_need_no_data(module, shape, classes):
    assert isinstance(module, ImageDataModule)
    assert module.image_shape == shape
    assert module.num_classes == classes


def test_image_folder_shape_needs_no_data():
    dm = ImageFolderDataModule(path="/nonexistent", image_size=16, channels=1)
    assert dm.image_shape == (1, 16, 16)
    dm = ImageFolderDataModule(path="/nonexistent")
    assert dm.image_shape == (3, 64, 64)


def test_default_hflip_per_data_set():
    assert not MNISTDataModule().hflip and not FashionMNISTDataModule().hflip
    assert not SVHNDataModule().hflip
    assert CIFAR10DataModule().hflip and CelebADataModule().hflip
    assert ImageFolderDataModule(path="x").hflip


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"val_fraction": 1.0}, {"val_fraction": -0.1}, {"train_limit": -1}],
)
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        FashionMNISTDataModule(**kwargs)


# -- MNIST family -------------------------------------------------------------------------------


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


def test_fashion_mnist_from_uncompressed_root(tmp_path):
    fake = make_fashion_mnist(tmp_path, compress=False)
    dm = fashion(tmp_path)
    dm.prepare_data()
    dm.setup()
    train = split_images(dm.train_dataset)
    val = split_images(dm.val_dataset)
    everything = torch.cat([train, val]).flatten(1)
    expected = torch.from_numpy(fake.train_images).flatten(1)
    # train + val is a permutation of the official training split
    assert sorted(map(bytes, everything.numpy())) == sorted(map(bytes, expected.numpy()))


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


def test_missing_fashion_mnist_raises_clear_error(tmp_path):
    dm = FashionMNISTDataModule(
        root=str(tmp_path / "data"), system_dir=str(tmp_path / "nothing"), download=False
    )
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert "Fashion-MNIST" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "data" / "FashionMNIST" / "raw") in message
    assert str(tmp_path / "nothing") in message
    assert "download" in message
    with pytest.raises(DatasetNotFoundError):
        dm.setup("fit")


def test_failed_download_becomes_dataset_not_found(tmp_path, monkeypatch):
    def offline(self):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(tvd.MNIST, "download", offline)
    dm = MNISTDataModule(root=str(tmp_path), download=True)
    with pytest.raises(DatasetNotFoundError, match="download failed") as info:
        dm.prepare_data()
    assert isinstance(info.value.__cause__, urllib.error.URLError)
    assert "MNIST" in str(info.value)


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


# -- splits and limits --------------------------------------------------------------------------


def test_splits_are_disjoint_and_seeded(tmp_path):
    make_fashion_mnist(tmp_path)

    def indices(seed: int) -> tuple[list[int], list[int]]:
        dm = fashion(tmp_path, seed=seed, val_fraction=0.25)
        dm.setup("fit")
        return dm.train_dataset.indices.tolist(), dm.val_dataset.indices.tolist()

    train, val = indices(0)
    assert len(val) == 10 and len(train) == 30
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(40))
    assert indices(0) == (train, val)
    assert indices(1) != (train, val)


def test_limits_take_the_first_items(tmp_path):
    make_fashion_mnist(tmp_path)
    full = fashion(tmp_path)
    full.setup()
    dm = fashion(tmp_path, train_limit=7, val_limit=2, test_limit=3)
    dm.setup()
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (7, 2, 3)
    assert dm.train_dataset.indices.tolist() == full.train_dataset.indices[:7].tolist()
    assert dm.val_dataset.indices.tolist() == full.val_dataset.indices[:2].tolist()
    assert dm.test_dataset.indices.tolist() == [0, 1, 2]


def test_loaders_shuffle_and_drop_last_only_for_training(tmp_path):
    make_fashion_mnist(tmp_path)
    dm = fashion(tmp_path, batch_size=5)
    dm.setup()
    train = dm.train_dataloader()
    assert train.drop_last and isinstance(train.sampler, EpochSeededSampler)
    assert len(train) == 36 // 5
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        assert not loader.drop_last
        assert isinstance(loader.sampler, torch.utils.data.SequentialSampler)
    assert sum(len(b[0]) for b in dm.test_dataloader()) == 20


def test_tiny_training_split_is_not_dropped(tmp_path):
    make_fashion_mnist(tmp_path)
    dm = fashion(tmp_path, batch_size=64, train_limit=10)
    dm.setup("fit")
    with pytest.warns(UserWarning, match="fewer than batch_size"):
        loader = dm.train_dataloader()
    assert len(loader) == 1


def test_hflip_only_on_training_images(tmp_path):
    make_cifar10(tmp_path)
    with skip_md5_checks():
        dm = CIFAR10DataModule(root=str(tmp_path), download=False, val_fraction=0.3)
        dm.setup("fit")
    base = dm.train_dataset.base
    torch.manual_seed(0)
    flipped = unchanged = 0
    for i in range(len(dm.train_dataset)):
        image = dm.train_dataset[i][0]
        original = base[int(dm.train_dataset.indices[i])][0]
        if torch.equal(image, original):
            unchanged += 1
        else:
            assert torch.equal(image, original.flip(-1))
            flipped += 1
    assert flipped > 0 and unchanged > 0
    for i in range(len(dm.val_dataset)):
        assert torch.equal(dm.val_dataset[i][0], base[int(dm.val_dataset.indices[i])][0])


# -- CIFAR-10, SVHN, CelebA ---------------------------------------------------------------------


def test_cifar10_batches(tmp_path):
    fake = make_cifar10(tmp_path)
    with skip_md5_checks():
        dm = CIFAR10DataModule(root=str(tmp_path), download=False, batch_size=6)
        dm.prepare_data()
        dm.setup()
    check_batch(first_batch(dm.train_dataloader()), (3, 32, 32), 6)
    images, labels = first_batch(dm.test_dataloader())
    np.testing.assert_array_equal(images.numpy(), fake.test_images[:6])
    np.testing.assert_array_equal(labels.numpy(), fake.test_labels[:6])
    assert len(dm.train_dataset) + len(dm.val_dataset) == 30


def test_cifar10_md5_check_is_torchvisions(tmp_path):
    make_cifar10(tmp_path)
    dm = CIFAR10DataModule(root=str(tmp_path), download=False)
    dm.prepare_data()  # files are present...
    with pytest.raises(DatasetNotFoundError, match="corrupt"):
        dm.setup("fit")  # ...but torchvision's integrity check rejects fake checksums


def test_svhn_batches(tmp_path):
    fake = make_svhn(tmp_path)
    with skip_md5_checks():
        dm = SVHNDataModule(root=str(tmp_path), download=False, batch_size=4)
        dm.prepare_data()
        dm.setup()
    check_batch(first_batch(dm.train_dataloader()), (3, 32, 32), 4)
    images, labels = first_batch(dm.test_dataloader())
    np.testing.assert_array_equal(images.numpy(), fake.test_images[:4])
    np.testing.assert_array_equal(labels.numpy(), fake.test_labels[:4])
    all_labels = torch.cat([y for _, y in dm.test_dataloader()])
    np.testing.assert_array_equal(all_labels.numpy(), fake.test_labels)
    assert 0 in all_labels.tolist()  # stored as 10 in the .mat file


def test_svhn_files_directly_in_root(tmp_path):
    make_svhn(tmp_path, subdir="")
    with skip_md5_checks():
        dm = SVHNDataModule(root=str(tmp_path), download=False, batch_size=4)
        dm.setup("test")
    assert len(dm.test_dataset) == 12


def test_missing_svhn_and_cifar_and_celeba(tmp_path):
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


# -- image folders ------------------------------------------------------------------------------


def test_image_folder_with_classes(tmp_path):
    make_image_folder(tmp_path / "photos", classes=("cats", "dogs", "owls"), per_class=10)
    dm = ImageFolderDataModule(path=str(tmp_path / "photos"), image_size=16, batch_size=4)
    assert dm.num_classes == 3
    dm.prepare_data()
    dm.setup()
    check_batch(first_batch(dm.train_dataloader()), (3, 16, 16), 4)
    sizes = (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset))
    assert sizes == (24, 3, 3)
    all_indices = torch.cat([dm.train_dataset.indices, dm.val_dataset.indices])
    all_indices = torch.cat([all_indices, dm.test_dataset.indices]).tolist()
    assert sorted(all_indices) == list(range(30))
    labels = {int(dm.train_dataset[i][1]) for i in range(len(dm.train_dataset))}
    assert labels == {0, 1, 2}
    pickle.dumps(dm.train_dataset)


def test_image_folder_flat_grayscale_skips_other_files(tmp_path):
    files = make_image_folder(tmp_path, classes=None, per_class=12, size=(50, 20))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".DS_Store").write_bytes(b"\0\0")
    dm = ImageFolderDataModule(
        path=str(tmp_path), image_size=8, channels=1, batch_size=2, val_fraction=0.2
    )
    assert dm.num_classes == 1
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\) .*notes.txt"):
        dm.setup()
    assert len(dm.train_dataset) + len(dm.val_dataset) + len(dm.test_dataset) == 12
    images, labels = first_batch(dm.val_dataloader())
    check_batch((images, labels), (1, 8, 8), 2)
    assert labels.tolist() == [0, 0]
    # exactly what load_image (the CLI path) makes of the same file
    index = int(dm.test_dataset.indices[0])
    expected = load_image(files[index], (1, 8, 8)).image
    assert torch.equal(dm.test_dataset[0][0], expected)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        ImageFolderDataModule(path=str(tmp_path / "missing")).prepare_data()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.md").write_text("hi")
    with pytest.raises(DatasetNotFoundError, match="no image files"):
        ImageFolderDataModule(path=str(tmp_path / "empty")).setup()
    with pytest.raises(ValueError, match="channels"):
        ImageFolderDataModule(path=str(tmp_path), channels=2)
    with pytest.raises(ValueError, match="test_fraction"):
        ImageFolderDataModule(path=str(tmp_path), val_fraction=0.5, test_fraction=0.5)


def test_image_folder_bad_image_names_its_file(tmp_path):
    make_image_folder(tmp_path, classes=None, per_class=3)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dm = ImageFolderDataModule(path=str(tmp_path), image_size=8, val_fraction=0, test_fraction=0)
    dm.setup("fit")
    with pytest.raises(ImageLoadError, match="broken.png"):
        for i in range(len(dm.train_dataset)):
            dm.train_dataset[i]


# -- load_image ----------------------------------------------------------------------------------


def test_load_image_converts_and_resizes(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.full((96, 128, 3), (200, 30, 30), dtype=np.uint8)).save(path)
    loaded = load_image(path, (1, 28, 28))
    assert loaded.image.dtype == torch.uint8
    assert tuple(loaded.image.shape) == (1, 28, 28)
    assert loaded.changed
    assert loaded.changes[0] == "converted RGB→L"
    assert "resized 128x96→37x28" in loaded.description
    assert "center-cropped to 28x28" in loaded.description


def test_load_image_square_and_unchanged(tmp_path):
    path = tmp_path / "square.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(path)
    assert load_image(path, (3, 28, 28)).description == "resized 64x64→28x28"
    same = load_image(path, (3, 64, 64))
    assert not same.changed and same.description == "unchanged"


def test_load_image_composites_transparency_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.fromarray(np.zeros((8, 8, 4), dtype=np.uint8)).save(path)  # fully transparent black
    loaded = load_image(path, (3, 8, 8))
    assert loaded.changes == ("converted RGBA→RGB",)
    assert int(loaded.image.min()) == 255


def test_load_image_rejects_non_images(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ImageLoadError, match="notes.txt"):
        load_image(text, (1, 28, 28))
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageLoadError, match="truncated.png") as info:
        load_image(truncated, (3, 28, 28))
    assert "\n" not in str(info.value)
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.png", (3, 28, 28))


# -- with a Trainer -----------------------------------------------------------------------------


class TinyModel(pl.LightningModule):
    """Just enough of a model to drive the DataModule through a Trainer."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(int(np.prod(image_shape)), 1)

    def _loss(self, batch) -> torch.Tensor:
        images, labels = batch
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        return self.layer(images.flatten(1).float() / 255).pow(2).mean()

    def training_step(self, batch, batch_idx):
        return self._loss(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_trainer_fit_validate_test(tmp_path):
    system = tmp_path / "system"
    make_fashion_mnist_debian(system)
    dm = FashionMNISTDataModule(
        root=str(tmp_path / "data"), system_dir=str(system), download=False, batch_size=8
    )
    model = TinyModel(dm.image_shape)
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 36 // 8
    assert "val_loss" in trainer.validate(model, datamodule=dm)[0]
    assert "test_loss" in trainer.test(model, datamodule=dm)[0]


# -- the real Fashion-MNIST (Debian package dataset-fashion-mnist) -------------------------------


def test_real_fashion_mnist_from_debian_package(tmp_path):
    assert REAL_FASHION_MNIST.is_dir(), "apt-get install dataset-fashion-mnist"
    dm = FashionMNISTDataModule(
        root=str(tmp_path), download=False, batch_size=100, val_limit=300, test_limit=200
    )
    dm.prepare_data()
    dm.setup("validate")
    dm.setup("test")
    assert len(dm.train_dataset) == 54000 and len(dm.val_dataset) == 300
    images, labels = first_batch(dm.val_dataloader())
    check_batch((images, labels), (1, 28, 28), 100)
    val_labels = torch.cat([y for _, y in dm.val_dataloader()])
    assert set(val_labels.tolist()) == set(range(10))
    test_labels = torch.cat([y for _, y in dm.test_dataloader()])
    assert len(test_labels) == 200 and set(test_labels.tolist()) == set(range(10))
    # the unpacked copy matches the package's file byte for byte
    with gzip.open(REAL_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        packaged = f.read()
    assert (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").read_bytes() == packaged
