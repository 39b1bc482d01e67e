"""The shipped model loads with every loader, is weights-only and small, and is the file its
model card describes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from glowapp import GlowModule
from glowapp.generate import load_module

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
SHIPPED = CHECKPOINTS / "fashion-mnist.ckpt"


def test_shipped_fashion_mnist_glow_is_weights_only_and_loads() -> None:
    data = SHIPPED.read_bytes()
    assert len(data) <= 25 * 2**20
    assert hashlib.sha256(data).hexdigest() in (CHECKPOINTS / "README.md").read_text()
    checkpoint = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    assert set(checkpoint) >= {"state_dict", "hyper_parameters"}
    assert "optimizer_states" not in checkpoint
    module = load_module(SHIPPED)
    same = GlowModule.load_from_checkpoint(SHIPPED).eval()
    assert module.image_shape == (1, 28, 28)
    images = module.sample(4, temperature=0.7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        bpd = module.bits_per_dim(images, noise=False)
        assert torch.equal(bpd, same.bits_per_dim(images, noise=False))
    assert torch.isfinite(bpd).all()
