"""ImageDataModule's splits, limits, loaders and epoch orders, and a run through a Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from helpers.fake_datasets import (
    make_cifar10,
    make_fashion_mnist,
    make_fashion_mnist_debian,
    skip_md5_checks,
)

from glowapp.data import CIFAR10DataModule, FashionMNISTDataModule
from glowapp.data.datasets import EpochSeededSampler, fraction_count


def test_splits_are_disjoint_and_seeded(tmp_path, fashion):
    make_fashion_mnist(tmp_path)

    def indices(seed: int) -> tuple[list[int], list[int]]:
        dm = fashion(seed=seed, val_fraction=0.25)
        dm.setup("fit")
        return dm.train_dataset.indices.tolist(), dm.val_dataset.indices.tolist()

    train, val = indices(0)
    assert len(val) == 10 and len(train) == 30
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(40))
    torch.manual_seed(123)  # the global RNG plays no part
    assert indices(0) == (train, val)
    assert indices(1) != (train, val)


@pytest.mark.parametrize(
    ("n", "fraction", "count"),
    [(40, 0.1, 4), (40, 0.0, 0), (0, 0.5, 0), (1, 0.5, 0), (2, 0.01, 1), (10, 0.99, 9)],
)
def test_fraction_count_keeps_both_sides_non_empty(n, fraction, count):
    assert fraction_count(n, fraction) == count


def test_limits_take_the_first_items(tmp_path, fashion):
    make_fashion_mnist(tmp_path)
    full = fashion()
    full.setup()
    dm = fashion(train_limit=7, val_limit=2, test_limit=3)
    dm.setup()
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (7, 2, 3)
    assert dm.train_dataset.indices.tolist() == full.train_dataset.indices[:7].tolist()
    assert dm.val_dataset.indices.tolist() == full.val_dataset.indices[:2].tolist()
    assert dm.test_dataset.indices.tolist() == [0, 1, 2]


def test_empty_training_split_is_an_error(tmp_path, fashion):
    make_fashion_mnist(tmp_path)
    with pytest.raises(ValueError, match="training split is empty"):
        fashion(train_limit=0).setup("fit")


def test_loaders_shuffle_and_drop_last_only_for_training(tmp_path, fashion):
    make_fashion_mnist(tmp_path)
    dm = fashion(batch_size=5)
    dm.setup()
    train = dm.train_dataloader()
    assert train.drop_last and isinstance(train.sampler, EpochSeededSampler)
    assert len(train) == 36 // 5
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        assert not loader.drop_last
        assert isinstance(loader.sampler, torch.utils.data.SequentialSampler)
    assert sum(len(b[0]) for b in dm.test_dataloader()) == 20


def test_loaders_set_themselves_up_outside_a_trainer(tmp_path, fashion):
    make_fashion_mnist(tmp_path)
    dm = fashion()
    assert len(dm.test_dataloader().dataset) == 20 and dm.train_dataset is None
    assert len(dm.val_dataloader().dataset) == 4


def test_tiny_training_split_is_not_dropped(tmp_path, fashion):
    make_fashion_mnist(tmp_path)
    dm = fashion(batch_size=64, train_limit=10)
    dm.setup("fit")
    with pytest.warns(UserWarning, match="fewer than batch_size"):
        loader = dm.train_dataloader()
    assert len(loader) == 1


def test_epoch_order_depends_on_seed_and_epoch_only():
    """What exact resumes rely on: the order of epoch e is the same in a fresh process."""
    sampler = EpochSeededSampler(50, seed=7)
    sampler.set_epoch(3)
    order = list(sampler)
    torch.manual_seed(999)
    again = EpochSeededSampler(50, seed=7)
    again.set_epoch(3)
    assert list(again) == order
    assert sorted(order) == list(range(50))
    again.set_epoch(4)
    assert list(again) != order
    assert list(EpochSeededSampler(50, seed=8)) != list(EpochSeededSampler(50, seed=7))


def test_hflip_only_on_training_images(tmp_path):
    make_cifar10(tmp_path)
    with skip_md5_checks():
        dm = CIFAR10DataModule(root=str(tmp_path), download=False, val_fraction=0.3)
        dm.setup("fit")
    base = dm.train_dataset.base
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


class TinyModel(pl.LightningModule):
    """Just enough of a model to drive the DataModule through a Trainer."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(int(np.prod(image_shape)), 1)
        self.seen: list[torch.Tensor] = []

    def _loss(self, batch) -> torch.Tensor:
        images, labels = batch
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        return self.layer(images.flatten(1).float() / 255).pow(2).mean()

    def training_step(self, batch, batch_idx):
        self.seen.append(batch[0])
        return self._loss(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(tmp_path, epochs: int) -> list[torch.Tensor]:
    """The training batches of a fit of ``epochs`` epochs, in the order the model saw them."""
    dm = FashionMNISTDataModule(
        root=str(tmp_path / "data"),
        system_dir=str(tmp_path / "system"),
        download=False,
        batch_size=8,
    )
    model = TinyModel(dm.image_shape)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == epochs * (36 // 8)
    assert "val_loss" in trainer.validate(model, datamodule=dm)[0]
    assert "test_loss" in trainer.test(model, datamodule=dm)[0]
    return model.seen


def test_trainer_fit_validate_test_and_epoch_orders(tmp_path):
    make_fashion_mnist_debian(tmp_path / "system")
    seen = _fit(tmp_path, epochs=2)
    assert not torch.equal(seen[0], seen[4])  # a new order each epoch...
    torch.manual_seed(42)
    again = _fit(tmp_path, epochs=2)  # ...and the same orders in another run, any global seed
    assert all(torch.equal(a, b) for a, b in zip(seen, again, strict=True))
