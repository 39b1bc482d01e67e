"""A small Glow briefly trained on real Fashion-MNIST, shared by the generation tests.

Trained once per test session (the ``trained_model`` fixture in ``conftest.py``) and reused by the
generation, CLI and notebook tests: levels=2, steps=4, hidden=32, 400 Adam steps of 64 images
(about 35 s on one CPU thread), reaching about 4.5 bits/dim on the test split — far from a good
model, but it knows the background is black and clothes are bright, which is all the tests need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch

from glowapp import GlowModule
from glowapp.data import FashionMNISTDataModule
from glowapp.models import Glow

TRAIN_STEPS = 400
BATCH_SIZE = 64


def fashion_mnist(root: Path, batch_size: int = BATCH_SIZE) -> FashionMNISTDataModule:
    """Real Fashion-MNIST (the system copy, unpacked under ``root``): 4000 train, 256 val/test."""
    return FashionMNISTDataModule(
        root=str(root),
        batch_size=batch_size,
        train_limit=4000,
        val_limit=256,
        test_limit=256,
        download=False,
    )


@dataclass(frozen=True)
class Trained:
    """A trained checkpoint and the data root it was trained from."""

    checkpoint: Path
    data_root: Path

    def test_images(self, n: int) -> torch.Tensor:
        """The first ``n`` Fashion-MNIST test images, uint8 ``[n, 1, 28, 28]``."""
        data = fashion_mnist(self.data_root, batch_size=n)
        data.setup("test")
        return next(iter(data.test_dataloader()))[0]


def train(directory: Path) -> Trained:
    """Train the small Glow into ``directory / "glow.ckpt"`` (deterministic: seeded)."""
    pl.seed_everything(0, verbose=False)
    data_root = directory / "data"
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=TRAIN_STEPS,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(directory),
    )
    # One intra-op thread: nearly as fast for this small model, and immune to the many-fold
    # slowdown of oversubscribed OpenMP threads when other processes share the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        flow = Glow(in_channels=1, image_size=28, levels=2, steps=4, hidden=32)
        trainer.fit(GlowModule(flow, lr=5e-3, warmup_steps=20), fashion_mnist(data_root))
    finally:
        torch.set_num_threads(threads)
    checkpoint = directory / "glow.ckpt"
    trainer.save_checkpoint(checkpoint)
    return Trained(checkpoint, data_root)
