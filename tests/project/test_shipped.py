"""The shipped models load with every loader, are weights-only and small, are the files their model
cards describe, and are what their configs in configs/shipped/ build."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import glowapp
from glowapp import GlowModule
from glowapp.callbacks import WarmStart
from glowapp.generate import load_module
from glowapp.pretrained import SHIPPED
from glowapp.training_cli import instantiate

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "checkpoints"
NAMES = sorted(SHIPPED)
# The config in configs/shipped/ that trains each shipped model: both Glow generators are one
# jointly trained network (the unconditional one is its "no label" branch).
CONFIGS = {
    "fashion-mnist": "fashion-mnist.yaml",
    "fashion-mnist-conditional": "fashion-mnist.yaml",
    "fashion-mnist-background": "fashion-mnist-background.yaml",
    "fashion-mnist-tarflow": "fashion-mnist-tarflow.yaml",
}
# The configs that carry on from their own committed weights (WarmStart), and those weights.
CARRIES_ON = {
    "fashion-mnist.yaml": "fashion-mnist.ckpt",
    "fashion-mnist-tarflow.yaml": "fashion-mnist-tarflow.ckpt",
}

# Glow options added after the shipped checkpoints were written: a checkpoint that does not record
# them was built with these defaults (the config builds the flow with all of them).
LATER_GLOW_DEFAULTS = {"label_embedding_dim": 0, "attention_heads": 0, "attention_levels": None}


def shipped_file(name: str) -> Path:
    """The shipped model's file in the source tree; a missing one fails the test that asks."""
    path = CHECKPOINTS / SHIPPED[name]
    if not path.is_file():
        pytest.fail(
            f"the shipped model {name!r} has no file {path}: every model in "
            "glowapp.pretrained.SHIPPED must ship in checkpoints/ (git lfs pull? a partial clone?)"
        )
    return path


def test_the_unconditional_model_ships() -> None:
    assert "fashion-mnist" in NAMES


def test_the_generators_are_one_network_used_two_ways() -> None:
    unconditional = glowapp.load("fashion-mnist")
    conditional = glowapp.load("fashion-mnist-conditional")
    assert unconditional.unconditional and unconditional.num_classes == 0
    assert conditional.num_classes == 10 and conditional.null_label is not None
    assert unconditional.can_guide and conditional.sampling == unconditional.sampling
    for (name, a), b in zip(
        unconditional.state_dict().items(), conditional.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    images = conditional.sample(3, generator=torch.Generator().manual_seed(0))
    null = torch.full((3,), conditional.null_label)
    assert torch.equal(
        unconditional.bits_per_dim(images, noise=False),
        conditional.bits_per_dim(images, noise=False, labels=null),
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_model_has_its_file(name: str) -> None:
    assert shipped_file(name).stat().st_size > 0


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_is_weights_only_and_loads(name: str) -> None:
    path = shipped_file(name)
    data = path.read_bytes()
    assert len(data) <= 25 * 2**20
    assert hashlib.sha256(data).hexdigest() in (CHECKPOINTS / "README.md").read_text()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert set(checkpoint) >= {"state_dict", "hyper_parameters"}
    assert "optimizer_states" not in checkpoint
    module = load_module(path)
    same = GlowModule.load_from_checkpoint(path).eval()
    assert module.image_shape == (1, 28, 28)
    labels = torch.arange(4) if module.num_classes else None
    generator = torch.Generator().manual_seed(0)
    images = module.sample(4, temperature=0.7, generator=generator, labels=labels)
    with torch.no_grad():
        bpd = module.bits_per_dim(images, noise=False, labels=labels)
        assert torch.equal(bpd, same.bits_per_dim(images, noise=False, labels=labels))
    assert torch.isfinite(bpd).all()


def test_every_shipped_model_has_its_config() -> None:
    assert set(CONFIGS) == set(SHIPPED)
    assert all((REPO / "configs" / "shipped" / config).is_file() for config in CONFIGS.values())


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_config_builds_the_shipped_flow(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = shipped_file(name)
    cli = instantiate(["--config", str(REPO / "configs" / "shipped" / CONFIGS[name])])
    flow = cli.model.hparams["flow"]
    shipped = torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]["flow"]
    assert shipped["class_path"] == flow["class_path"]
    if shipped["class_path"] == "glowapp.models.glow.Glow":
        assert LATER_GLOW_DEFAULTS | shipped["init_args"] == flow["init_args"]
    else:
        assert shipped["class_path"] == "glowapp.models.tarflow.TarFlow"
        assert shipped["init_args"] == flow["init_args"]
    if CONFIGS[name] in CARRIES_ON:
        own = CARRIES_ON[CONFIGS[name]]
        (warm_start,) = [c for c in cli.trainer.callbacks if isinstance(c, WarmStart)]
        assert Path(warm_start.checkpoint) == Path("checkpoints") / own
        WarmStart(CHECKPOINTS / own).setup(pl.Trainer(), cli.model, "fit")
        assert cli.model.hparams["label_dropout"] > 0  # one network, conditional and not
