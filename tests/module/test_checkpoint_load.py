"""Checkpoints of GlowModule: plain-data hyper-parameters, reloading with no other argument,
old-format hyper-parameters, and weights of another architecture named as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from helpers.trained import Trained
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, fixed_batch, tiny_module

from glowapp import GlowModule
from glowapp.checkpointing import CheckpointError, upgrade_hparams
from glowapp.flows import ActNorm
from glowapp.generate import load_module
from glowapp.models import RealNVP, build_flow

pytestmark = pytest.mark.usefixtures("single_thread")

PLAIN = (str, int, float, bool, type(None))


def assert_plain_data(value: object, where: str = "hyper_parameters") -> None:
    """``value`` is built of dicts with string keys, lists and scalars only."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where}: key {key!r}"
            assert_plain_data(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_plain_data(item, f"{where}[{i}]")
    else:
        assert isinstance(value, PLAIN), f"{where} is a {type(value).__name__}: {value!r}"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory, fashion_root: Path) -> tuple[GlowModule, Path]:
    """A tiny additive Glow with a plain 1×1 conv after 4 steps, and its checkpoint."""
    directory = tmp_path_factory.mktemp("fitted")
    pl.seed_everything(0)
    module = tiny_module(coupling="additive", permutation="conv", lr=5e-3)
    t = quiet_trainer(directory, max_steps=4, limit_val_batches=0)
    t.fit(module, datamodule=fashion_data(fashion_root))
    path = directory / "m.ckpt"
    t.save_checkpoint(path)
    return module.eval(), path


def test_load_from_checkpoint_gives_identical_bits_per_dim(fitted: tuple[GlowModule, Path]) -> None:
    module, path = fitted
    batch = fixed_batch(module)
    with torch.no_grad():
        expected = module.bits_per_dim(batch, noise=False)
        for loaded in (GlowModule.load_from_checkpoint(path).eval(), load_module(path)):
            assert torch.equal(loaded.bits_per_dim(batch, noise=False), expected)
            assert loaded.hparams == module.hparams
            assert all(bool(m.initialized) for m in loaded.modules() if isinstance(m, ActNorm))
    assert loaded.hparams["flow"]["init_args"]["coupling"] == "additive"


def test_checkpoint_hyper_parameters_are_plain_data(fitted: tuple[GlowModule, Path]) -> None:
    """Readable with ``weights_only=True``: nothing in a checkpoint can run code."""
    _, path = fitted
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    assert_plain_data(dict(hparams))
    assert hparams["flow"]["class_path"] == "glowapp.models.glow.Glow"
    assert hparams["preprocessing"] == {"n_bits": 8, "logit_alpha": None}
    assert not any(key.startswith("_") for key in hparams)  # no Lightning instantiator


def test_old_format_hyper_parameters_are_translated(tmp_path: Path) -> None:
    """glowapp < 0.2 stored flat ``arch``, ``levels``, … keys and a ``skipped_steps`` buffer."""
    glow_old = {
        "arch": "glow", "image_shape": (1, 28, 28), "levels": 2, "steps": 2, "hidden": 16,
        "coupling": "additive", "permutation": "conv", "blocks": 2, "batch_norm": False,
        "n_bits": 5, "logit_alpha": None, "lr": 2e-3, "warmup_steps": 7, "max_skipped_steps": 3,
        "dequantization": "variational", "dequantization_steps": 2, "dequantization_hidden": 8,
        "memory_saving": True, "num_classes": 10, "class_weight": 0.1,
    }  # fmt: skip
    new = upgrade_hparams(glow_old)
    assert new["flow"] == {
        "class_path": "glowapp.models.glow.Glow",
        "init_args": {
            "levels": 2, "steps": 2, "hidden": 16, "coupling": "additive", "permutation": "conv",
            "in_channels": 1, "image_size": [28, 28], "num_classes": 10,
            "spline_bins": 8, "spline_bound": 3.0,
        },
    }  # fmt: skip
    assert new["preprocessing"] == {"n_bits": 5, "logit_alpha": None}
    assert new["dequantization"] == {"kind": "variational", "steps": 2, "hidden": 8}
    assert (new["lr"], new["warmup_steps"], new["class_weight"]) == (2e-3, 7, 0.1)
    assert new["memory_saving"] and "max_skipped_steps" not in new
    assert upgrade_hparams(new) == new  # today's hyper-parameters pass through

    realnvp = upgrade_hparams({"arch": "realnvp", "image_shape": (3, 16, 16), "levels": 2,
                               "hidden": 8, "blocks": 1, "logit_alpha": 0.05})  # fmt: skip
    flow = build_flow(realnvp["flow"])
    assert isinstance(flow, RealNVP)
    assert {k: flow.init_args[k] for k in ("in_channels", "scales", "hidden", "blocks")} == {
        "in_channels": 3, "scales": 2, "hidden": 8, "blocks": 1,
    }  # fmt: skip
    assert flow.image_size == (16, 16)
    assert realnvp["preprocessing"] == {"n_bits": 8, "logit_alpha": 0.05}
    nice = upgrade_hparams({"arch": "nice", "image_shape": (1, 8, 8), "steps": 3, "hidden": 8})
    assert nice["flow"]["init_args"]["couplings"] == 3
    assert build_flow(nice["flow"]).latent_shapes() == [(1, 8, 8)]

    # An old checkpoint (with the step counter the module kept then) loads and scores the same.
    module = tiny_module().eval()
    old = {k: v for k, v in glow_old.items() if k in ("arch", "image_shape", "levels", "steps")}
    state = {**module.state_dict(), "skipped_steps": torch.tensor(2)}
    hparams = {**old, "hidden": 16}
    torch.save(
        {"state_dict": state, "hyper_parameters": hparams, "pytorch-lightning_version": "2.1.0"},
        tmp_path / "o.ckpt",
    )
    loaded = load_module(tmp_path / "o.ckpt")
    batch = fixed_batch(module)
    with torch.no_grad():
        assert torch.equal(
            loaded.bits_per_dim(batch, noise=False), module.bits_per_dim(batch, noise=False)
        )


def test_checkpoint_of_another_architecture_names_the_difference(
    fitted: tuple[GlowModule, Path],
) -> None:
    _, path = fitted
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    other = tiny_module(steps=1, hidden=8)
    with pytest.raises(CheckpointError) as info:
        other.on_load_checkpoint(state)
    message = str(info.value)
    assert message.startswith("checkpoint does not match this model (glowapp.models.glow.Glow)")
    assert "not in model: flow.levels.0.layers." in message and "shape differs" in message
    assert message.endswith(
        "; the checkpoint's flow differs: steps=2 (model: 1), hidden=16 (model: 8), "
        "coupling='additive' (model: 'affine'), permutation='conv' (model: 'lu')"
    )
    assert "\n" not in message
    # Lightning replaces the checkpoint's hyper-parameters by the arguments given, so only the
    # weights can be compared here.
    with pytest.raises(CheckpointError, match="checkpoint does not match this model"):
        GlowModule.load_from_checkpoint(path, flow=other.flow)


def test_trained_model_inverse_drift_and_finite_samples(trained_model: Trained) -> None:
    module = GlowModule.load_from_checkpoint(trained_model.checkpoint, map_location="cpu").eval()
    images = trained_model.test_images(64)
    with torch.no_grad():
        x, _ = module.preprocess.encode_images(images, noise=True)
        latents, _ = module.flow.encode(x)
        drift = (module.flow.decode(latents) - x).abs().max().item()
        torch.manual_seed(0)
        samples = module.flow.sample(256, temperature=1.0)
    assert drift < 1e-3
    assert torch.isfinite(samples).all(), (
        f"{(~torch.isfinite(samples)).flatten(1).any(1).sum()} non-finite samples"
    )
