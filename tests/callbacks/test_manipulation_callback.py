"""ManipulationCallback: a grid of validation images of one class moved towards another."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from glowapp import GlowModule
from glowapp.callbacks import ManipulationCallback
from glowapp.models import Glow

pytestmark = pytest.mark.usefixtures("single_thread")

LABELS = torch.tensor([1, 7, 9, 7, 9, 7, 9, 7, 9, 9, 7, 1])
"""Validation labels: the rows are the first two 7s (images 1 and 3)."""


def images(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator)


class LabelledData(pl.LightningDataModule):
    """Random 8x8 training images, and validation images labelled :data:`LABELS`."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(images(16, 0), torch.zeros(16, dtype=torch.long)), 8)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(images(len(LABELS), 1), LABELS), batch_size=5)


def trainer(tmp_path: Path, callback: ManipulationCallback) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_steps=2,
        limit_val_batches=1,
        logger=False,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )


def module() -> GlowModule:
    return GlowModule(Glow(in_channels=1, image_size=8, levels=2, steps=1, hidden=8))


def test_writes_one_row_per_image_and_one_column_per_alpha(tmp_path: Path) -> None:
    callback = ManipulationCallback(
        every_n_steps=2, every_n_epochs=None, alphas=[0.0, 1.0, 2.0], num_images=2, set_size=3
    )
    trainer(tmp_path, callback).fit(module(), datamodule=LabelledData())
    assert callback.last_path == tmp_path / "images" / "manipulation_step0000002.png"
    cell = 8 + 2
    with Image.open(callback.last_path) as grid:
        assert grid.size == (3 * cell + 2, 2 * cell + 2)
        shown = np.asarray(grid.convert("L"))
    rows = images(len(LABELS), 1)[[1, 3], 0].numpy()
    for row, expected in enumerate(rows):  # alpha = 0: the validation images themselves
        top = 2 + row * cell
        assert np.array_equal(shown[top : top + 8, 2:10], expected)
        assert not np.array_equal(shown[top : top + 8, 2 + 2 * cell : 10 + 2 * cell], expected)


def test_without_a_datamodule_it_warns_and_writes_nothing(tmp_path: Path) -> None:
    callback = ManipulationCallback(every_n_steps=2, every_n_epochs=None)
    data = LabelledData()
    with pytest.warns(UserWarning, match="ManipulationCallback: needs a DataModule with labels"):
        trainer(tmp_path, callback).fit(module(), data.train_dataloader(), data.val_dataloader())
    assert callback.last_path is None


def test_a_class_missing_from_the_validation_set_is_named(tmp_path: Path) -> None:
    callback = ManipulationCallback(every_n_steps=2, every_n_epochs=None, positive_class=4)
    with pytest.raises(ValueError, match="^the positive class 4 has no image in this data set"):
        trainer(tmp_path, callback).fit(module(), datamodule=LabelledData())
