"""WarmStart: a new run starts from another run's weights; a conditional Glow warm-started from an
unconditional one begins at exactly the unconditional density; architecture mismatches are one
clear error; a resumed run keeps its own weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, fixed_batch, tiny_module

from glowapp.callbacks import WarmStart
from glowapp.checkpointing import CheckpointError


def _saved(tmp_path: Path, root: Path, **options: object) -> tuple[Path, pl.LightningModule]:
    """A tiny module trained for 2 steps and saved; returns its checkpoint and the module."""
    pl.seed_everything(0)
    module = tiny_module(**options)
    trainer = quiet_trainer(tmp_path / "source", max_steps=2, limit_val_batches=0)
    trainer.fit(module, datamodule=fashion_data(root))
    path = tmp_path / "source.ckpt"
    trainer.save_checkpoint(path)
    return path, module


def test_conditional_model_starts_at_the_unconditional_density(
    tmp_path: Path, fashion_root: Path
) -> None:
    source, unconditional = _saved(tmp_path, fashion_root)
    pl.seed_everything(1)
    conditional = tiny_module(num_classes=10)
    trainer = quiet_trainer(tmp_path / "target", max_steps=1, limit_val_batches=0)
    WarmStart(source).setup(trainer, conditional, "fit")

    images = fixed_batch(conditional)
    labels = torch.arange(len(images)) % 10
    unconditional.eval(), conditional.eval()
    with torch.no_grad():
        expected = unconditional.bits_per_dim(images, noise=False)
        for label in (labels, torch.full_like(labels, 3)):  # any label: the embedding starts at 0
            got = conditional.bits_per_dim(images, noise=False, labels=label)
            torch.testing.assert_close(got, expected)


def test_mismatched_architecture_is_one_clear_error(tmp_path: Path, fashion_root: Path) -> None:
    source, _ = _saved(tmp_path, fashion_root)
    wider = tiny_module(hidden=24)
    trainer = quiet_trainer(tmp_path / "target", max_steps=1)
    with pytest.raises(
        CheckpointError,
        match=r"cannot warm-start from a different architecture \(other shape: flow\.",
    ):
        WarmStart(source).setup(trainer, wider, "fit")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        WarmStart(tmp_path / "missing.ckpt").setup(trainer, wider, "fit")


def test_only_fit_loads_and_training_continues_from_the_loaded_weights(
    tmp_path: Path, fashion_root: Path
) -> None:
    source, trained = _saved(tmp_path, fashion_root)
    pl.seed_everything(2)
    fresh = tiny_module()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    WarmStart(source).setup(quiet_trainer(tmp_path / "t"), fresh, "test")
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())

    trainer = quiet_trainer(
        tmp_path / "target", max_steps=1, limit_val_batches=0, callbacks=[WarmStart(source)]
    )
    trainer.fit(fresh, datamodule=fashion_data(fashion_root))
    # One Adam step from the loaded weights moves each parameter by at most ~lr (warm-up: less).
    for (name, got), want in zip(fresh.named_parameters(), trained.parameters(), strict=True):
        assert (got - want).abs().max() <= 2e-3 + 1e-6, name
