"""The shipped models load with every loader, are weights-only and small, are the files their model
cards describe, and are what their configs in configs/shipped/ build."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from glowapp import GlowModule
from glowapp.callbacks import WarmStart
from glowapp.cli import instantiate
from glowapp.generate import load_module
from glowapp.pretrained import SHIPPED

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "checkpoints"
NAMES = [name for name, file in SHIPPED.items() if (CHECKPOINTS / file).is_file()]


def test_the_unconditional_model_ships() -> None:
    assert "fashion-mnist" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_is_weights_only_and_loads(name: str) -> None:
    path = CHECKPOINTS / SHIPPED[name]
    data = path.read_bytes()
    assert len(data) <= 25 * 2**20
    assert hashlib.sha256(data).hexdigest() in (CHECKPOINTS / "README.md").read_text()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert set(checkpoint) >= {"state_dict", "hyper_parameters"}
    assert "optimizer_states" not in checkpoint
    module = load_module(path)
    same = GlowModule.load_from_checkpoint(path).eval()
    assert module.image_shape == (1, 28, 28)
    labels = torch.arange(4) if module.flow.num_classes else None
    generator = torch.Generator().manual_seed(0)
    images = module.sample(4, temperature=0.7, generator=generator, labels=labels)
    with torch.no_grad():
        bpd = module.bits_per_dim(images, noise=False, labels=labels)
        assert torch.equal(bpd, same.bits_per_dim(images, noise=False, labels=labels))
    assert torch.isfinite(bpd).all()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_config_builds_the_shipped_flow(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli = instantiate(["--config", str(REPO / "configs" / "shipped" / f"{name}.yaml")])
    flow = cli.model.hparams["flow"]
    if (CHECKPOINTS / SHIPPED[name]).is_file():
        shipped = torch.load(CHECKPOINTS / SHIPPED[name], map_location="cpu", weights_only=True)
        assert shipped["hyper_parameters"]["flow"]["init_args"] == flow["init_args"]
    if name == "fashion-mnist-conditional":  # starts from the unconditional model's weights
        (warm_start,) = [c for c in cli.trainer.callbacks if isinstance(c, WarmStart)]
        assert Path(warm_start.checkpoint) == Path("checkpoints/fashion-mnist.ckpt")
        WarmStart(CHECKPOINTS / "fashion-mnist.ckpt").setup(pl.Trainer(), cli.model, "fit")
