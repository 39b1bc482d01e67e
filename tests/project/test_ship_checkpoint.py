"""scripts/ship_checkpoint.py: a run's checkpoint becomes a weights-only file that loads as the
same model (same bits/dim) and carries no optimizer or callback state."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
import torch
from helpers.generation import write_checkpoint
from helpers.trained import Trained

import glowapp
from glowapp import GlowModule
from glowapp.checkpointing import CheckpointError
from glowapp.generate import load_module
from glowapp.models import Glow

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ship_checkpoint.py"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("ship_checkpoint", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weights_only_file_is_the_same_model(
    tmp_path: Path, trained_model: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "shipped" / "model.ckpt"
    assert _script().main([str(trained_model.checkpoint), str(target)]) == 0
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert f"sha256 {digest};" in capsys.readouterr().out

    shipped = torch.load(target, map_location="cpu", weights_only=True)
    assert set(shipped) <= {
        "state_dict", "hyper_parameters", "pytorch-lightning_version", "global_step", "epoch"
    }  # fmt: skip
    assert "optimizer_states" in torch.load(trained_model.checkpoint, weights_only=True)
    assert target.stat().st_size < trained_model.checkpoint.stat().st_size

    images = trained_model.test_images(8)
    original, copy = load_module(trained_model.checkpoint), load_module(target)
    with torch.no_grad():
        expected = original.bits_per_dim(images, noise=False)
        torch.testing.assert_close(copy.bits_per_dim(images, noise=False), expected)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "notes.ckpt"
    bad.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint file"):
        _script().main([str(bad), str(tmp_path / "out.ckpt")])
    assert not (tmp_path / "out.ckpt").exists()


def test_a_guided_model_ships_as_the_unconditional_one_with_its_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = Glow(in_channels=1, image_size=8, levels=2, steps=1, hidden=8, num_classes=3,
                label_embedding_dim=4)  # fmt: skip
    source = write_checkpoint(GlowModule(flow, label_dropout=0.2), tmp_path / "run.ckpt")
    target = tmp_path / "shipped.ckpt"
    argv = [
        str(source),
        str(target),
        "--unconditional",
        "--guidance",
        "1.5",
        "--temperature",
        "0.9",
    ]
    assert _script().main(argv) == 0
    assert "'temperature': 0.9, 'guidance': 1.5" in capsys.readouterr().out
    conditional, unconditional = glowapp.load(source), glowapp.load(target)
    assert unconditional.unconditional and unconditional.num_classes == 0
    assert (unconditional.sampling.temperature, unconditional.sampling.guidance) == (0.9, 1.5)
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    null = torch.full((4,), conditional.null_label)
    torch.testing.assert_close(
        unconditional.bits_per_dim(images, noise=False),
        conditional.bits_per_dim(images, noise=False, labels=null),
    )
    with pytest.raises(ValueError, match="takes no labels"):
        unconditional.sample(2, labels=torch.zeros(2, dtype=torch.long))
