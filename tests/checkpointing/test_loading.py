"""glowapp.checkpointing: reading and validating checkpoint files, load_module, devices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.generation import tiny_glow, write_checkpoint
from PIL import Image

from glowapp.checkpointing import CheckpointError, check_checkpoint_file, read_checkpoint
from glowapp.devices import resolve_device
from glowapp.module import GlowModule, load_module

pytestmark = pytest.mark.usefixtures("single_thread")

OLD_HPARAMS = {"arch": "glow", "image_shape": (1, 28, 28), "levels": 2, "steps": 2, "hidden": 16}
"""The flat hyper-parameters glowapp < 0.2 stored for :func:`tiny_glow`'s architecture."""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tiny_glow(), tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def bad_files(directory: Path, checkpoint: Path) -> dict[Path, str]:
    """Files that are not usable checkpoints, each with the problem its error must state."""
    data = checkpoint.read_bytes()
    (directory / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    Image.new("L", (8, 8)).save(directory / "picture.ckpt", format="PNG")
    torch.save({"weights": torch.zeros(3)}, directory / "other.ckpt")
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 1}}, directory / "noflow.ckpt")
    return {
        directory / "missing.ckpt": "no such checkpoint file",
        directory: "is a directory, not a checkpoint file",
        directory / "truncated.ckpt": "truncated or corrupt checkpoint (incomplete zip archive)",
        directory / "picture.ckpt": "not a PyTorch checkpoint file",
        directory / "other.ckpt": "not a glowapp checkpoint",
        directory / "noflow.ckpt": "not a glowapp checkpoint",
    }


def test_load_module_gives_an_eval_mode_module_with_the_same_weights(checkpoint: Path) -> None:
    module = load_module(checkpoint, "cpu")
    assert isinstance(module, GlowModule) and not module.training
    assert module.image_shape == (1, 28, 28)
    expected = tiny_glow().state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in module.state_dict().items())


def test_every_bad_file_is_one_checkpoint_error_naming_path_and_problem(
    tmp_path: Path, checkpoint: Path
) -> None:
    for path, problem in bad_files(tmp_path, checkpoint).items():
        for check in (read_checkpoint, check_checkpoint_file, load_module):
            with pytest.raises(CheckpointError) as info:
                check(path)
            assert str(info.value).startswith(f"{path}: {problem}"), (check, str(info.value))
            assert "\n" not in str(info.value)
            assert info.value.path == path and info.value.problem in str(info.value)
    assert issubclass(CheckpointError, ValueError)
    assert check_checkpoint_file(checkpoint) == checkpoint


def test_checkpoint_error_without_a_path_is_the_problem_alone() -> None:
    assert str(CheckpointError("does not match")) == "does not match"
    assert str(CheckpointError("does not match", "a.ckpt")) == "a.ckpt: does not match"


def test_old_format_checkpoints_are_translated(tmp_path: Path) -> None:
    module = tiny_glow().eval()
    path = write_checkpoint(module, tmp_path / "old.ckpt", dict(OLD_HPARAMS, lr=0.002))
    loaded = load_module(path)
    assert loaded.hparams["flow"]["class_path"] == "glowapp.models.glow.Glow"
    assert loaded.hparams["flow"]["init_args"]["hidden"] == 16
    assert loaded.hparams["lr"] == 0.002
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    torch.testing.assert_close(
        loaded.bits_per_dim(images, noise=False), module.bits_per_dim(images, noise=False)
    )


def test_weights_that_do_not_fit_name_the_file(tmp_path: Path) -> None:
    path = write_checkpoint(tiny_glow(), tmp_path / "wide.ckpt", dict(OLD_HPARAMS, hidden=32))
    with pytest.raises(CheckpointError) as info:
        load_module(path)
    message = str(info.value)
    assert message.startswith(f"{path}: checkpoint does not match this model")
    assert "shape differs" in message and "\n" not in message


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for name in ("tpu", "meta", "gpu0"):
        with pytest.raises(ValueError) as info:
            resolve_device(name)
        assert str(info.value) == f"device must be auto, cpu, cuda or cuda:N, got {name!r}"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available; use --device cpu"):
            resolve_device("cuda")
