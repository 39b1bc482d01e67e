"""The data set table and the DataModules built from it: shapes, defaults, arguments, messages."""

from __future__ import annotations

import dataclasses

import pytest
import torchvision.datasets as tvd
from jsonargparse import ArgumentParser

from glowapp.data import (
    CelebADataModule,
    CIFAR10DataModule,
    DatasetNotFoundError,
    FashionMNISTDataModule,
    ImageDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    SVHNDataModule,
    TorchvisionDataModule,
    catalog,
)

TABLE = {
    MNISTDataModule: ((1, 28, 28), 10, False),
    FashionMNISTDataModule: ((1, 28, 28), 10, False),
    CIFAR10DataModule: ((3, 32, 32), 10, True),
    SVHNDataModule: ((3, 32, 32), 10, False),
    CelebADataModule: ((3, 64, 64), 1, True),
}
"""Per public module: image shape, classes and default hflip (CelebA at its default size)."""


@pytest.mark.parametrize("module", list(TABLE), ids=lambda m: m.source.name)
def test_shape_classes_and_hflip_need_no_data(module):
    shape, classes, hflip = TABLE[module]
    dm = module(root="/nonexistent")
    assert isinstance(dm, ImageDataModule)
    assert (dm.image_shape, dm.num_classes, dm.hflip) == (shape, classes, hflip)
    assert dm.hparams["hflip"] is hflip  # the resolved default is what a checkpoint records
    assert module(root="/nonexistent", hflip=not hflip).hflip is (not hflip)


def test_celeba_and_folder_sizes_are_arguments():
    assert CelebADataModule(root="/nonexistent", image_size=32).image_shape == (3, 32, 32)
    assert ImageFolderDataModule(path="/nonexistent", image_size=16, channels=1).image_shape == (
        1,
        16,
        16,
    )
    assert ImageFolderDataModule(path="/nonexistent").image_shape == (3, 64, 64)
    assert ImageFolderDataModule(path="x").hflip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
        ({"num_workers": -1}, "num_workers must be >= 0, got -1"),
        ({"val_fraction": 1.0}, "val_fraction must be in [0, 1), got 1.0"),
        ({"val_fraction": -0.1}, "val_fraction must be in [0, 1), got -0.1"),
        ({"train_limit": -1}, "train_limit must be >= 0 or None, got -1"),
        ({"test_limit": -2}, "test_limit must be >= 0 or None, got -2"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError) as info:
        FashionMNISTDataModule(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("module", [CelebADataModule, ImageFolderDataModule])
def test_a_bad_image_size_is_rejected(module):
    kwargs = {"path": "/nonexistent"} if module is ImageFolderDataModule else {}
    with pytest.raises(ValueError) as info:
        module(image_size=0, **kwargs)
    assert str(info.value) == "image_size must be positive, got 0"


def test_the_base_class_names_what_is_missing():
    with pytest.raises(TypeError, match="subclass that sets `source`"):
        TorchvisionDataModule()


def test_a_new_data_set_is_a_row_and_a_subclass(tmp_path):
    """What the catalog promises: a row and a three-line class give a working DataModule."""

    class KMNISTDataModule(TorchvisionDataModule):
        source = dataclasses.replace(
            catalog.MNIST, name="KMNIST", dataset=tvd.KMNIST, folders=("KMNIST/raw",)
        )

    dm = KMNISTDataModule(root=str(tmp_path), download=False)
    assert dm.image_shape == (1, 28, 28) and not dm.hflip
    with pytest.raises(DatasetNotFoundError, match=r"KMNIST data set not found") as info:
        dm.prepare_data()
    assert str(tmp_path / "KMNIST" / "raw") in str(info.value)


def test_rows_served_from_arrays_need_labels():
    with pytest.raises(ValueError, match="needs labels"):
        dataclasses.replace(catalog.SVHN, labels=None)


@pytest.mark.parametrize("module", list(TABLE), ids=lambda m: m.source.name)
def test_missing_data_set_message_has_one_format(module, tmp_path):
    """Every set says what is missing, where it looked, and each way to provide it."""
    with pytest.raises(DatasetNotFoundError) as info:
        kwargs = {"system_dir": ""} if module is FashionMNISTDataModule else {}
        module(root=str(tmp_path), download=False, **kwargs).prepare_data()
    lines = str(info.value).splitlines()
    name = module.source.name
    assert lines[0] == (
        f"{name} data set not found: it is not on disk and downloading is disabled (download=False)."
    )
    assert lines[1] == "Looked in:"
    ways = lines.index("To provide it, do one of:")
    looked = lines[2:ways]
    assert looked and all(line.startswith(f"  - {tmp_path}") for line in looked)
    assert all(file.rstrip("/") in looked[0] for file in module.source.files)
    assert lines[-1].startswith("  - allow downloading (download=True")
    assert len(lines) - ways - 1 >= 2  # by hand, or by download


def test_fashion_mnist_message_offers_the_debian_package(tmp_path):
    dm = FashionMNISTDataModule(
        root=str(tmp_path / "data"), system_dir=str(tmp_path / "nothing"), download=False
    )
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "data" / "FashionMNIST" / "raw") in message
    assert f"{tmp_path / 'nothing'} (system-wide copy)" in message
    with pytest.raises(DatasetNotFoundError):
        dm.setup("fit")


def test_celeba_message_names_what_a_download_needs(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="gdown") as info:
        CelebADataModule(root=str(tmp_path), download=False).prepare_data()
    assert "img_align_celeba/" in str(info.value)


@pytest.mark.parametrize(
    ("module", "args", "expected"),
    [
        (
            FashionMNISTDataModule,
            ["--data.system_dir", "", "--data.val_limit", "5"],
            {"system_dir": "", "val_limit": 5, "hflip": False},
        ),
        (
            CIFAR10DataModule,
            ["--data.batch_size", "3", "--data.hflip", "false"],
            {"batch_size": 3, "hflip": False},
        ),
        (
            CelebADataModule,
            ["--data.image_size", "32"],
            {"image_shape": (3, 32, 32), "hflip": True},
        ),
        (SVHNDataModule, ["--data.init_args.test_limit", "7"], {"test_limit": 7, "root": "data"}),
    ],
    ids=["fashion-mnist", "cifar10", "celeba", "svhn"],
)
def test_config_arguments_reach_the_module(module, args, expected):
    """Every constructor argument is visible to LightningCLI (subclass mode of ImageDataModule)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(ImageDataModule, "data")
    config = parser.parse_args(["--data", f"{module.__module__}.{module.__name__}", *args])
    names = {"root", "download", "hflip", "batch_size", "num_workers", "val_fraction", "seed"}
    names |= {"train_limit", "val_limit", "test_limit", "pin_memory"}
    assert names <= set(vars(config.data.init_args))
    dm = parser.instantiate(config).data
    assert type(dm) is module
    assert {name: getattr(dm, name) for name in expected} == expected
