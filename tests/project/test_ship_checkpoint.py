"""scripts/ship_checkpoint.py: a run's checkpoint becomes a weights-only file that loads as the
same model (same bits/dim) and carries no optimizer or callback state."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
import torch
from helpers.trained import Trained

from glowapp.checkpointing import CheckpointError
from glowapp.generate import load_module

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
    assert capsys.readouterr().out.strip().endswith(f"sha256 {digest}")

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
