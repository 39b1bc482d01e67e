"""glowapp.load: a checkpoint (by path or shipped name) as an ImageFlow, without Lightning, with
exactly the numbers the GlowModule that wrote it gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.generation import tiny_glow, write_checkpoint

import glowapp
import glowapp.generate
from glowapp import GlowModule, ImageFlow
from glowapp.checkpointing import CheckpointError
from glowapp.module import load_module

pytestmark = pytest.mark.usefixtures("single_thread")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = json.loads((FIXTURES / "checkpoints-8ba712c.json").read_text())


def fixture_batch() -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.tensor(EXPECTED["images"], dtype=torch.uint8).reshape(-1, 1, 8, 8)
    return images, torch.tensor(EXPECTED["labels"])


@pytest.mark.parametrize("name", sorted(EXPECTED["bpd"]))
def test_checkpoints_of_8ba712c_load_with_the_same_bits_per_dim(name: str) -> None:
    """Checkpoints written by glowapp 8ba712c (before ImageFlow existed; made by a Lightning
    Trainer there) give the bits/dim recorded then, through both loaders."""
    images, labels = fixture_batch()
    path = FIXTURES / f"{name}-8ba712c.ckpt"
    model = glowapp.load(path)
    assert isinstance(model, ImageFlow) and not model.training
    labels = labels if model.num_classes else None
    expected = torch.tensor(EXPECTED["bpd"][name])
    with torch.no_grad():
        got = model.bits_per_dim(images, noise=False, labels=labels)
        module = GlowModule.load_from_checkpoint(path, map_location="cpu", weights_only=True)
        again = module.eval().bits_per_dim(images, noise=False, labels=labels)
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-5)
    torch.testing.assert_close(again, expected, rtol=0, atol=2e-5)


def test_load_imports_no_lightning_and_samples_by_shipped_name() -> None:
    code = (
        "import glowapp, sys; m = glowapp.load('fashion-mnist'); x = m.sample(4); "
        "assert tuple(x.shape) == (4, 1, 28, 28), x.shape; "
        "assert float(x.min()) >= 0 and float(x.max()) <= 1; "
        "assert 'pytorch_lightning' not in sys.modules, 'Lightning was imported'; "
        "assert 'lightning_fabric' not in sys.modules, 'Lightning Fabric was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_module_and_the_plain_object_agree_and_share_the_checkpoint_format(
    tmp_path: Path,
) -> None:
    module = tiny_glow(side=8, num_classes=3).eval()
    images, labels = fixture_batch()
    with torch.no_grad():
        module.encode(images, labels=labels)  # ActNorm's data-dependent initialisation
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    keys = set(module.state_dict())
    assert keys == set(module.model.state_dict())
    assert all(k.startswith(("flow.", "dequantizer.")) for k in keys)
    path = write_checkpoint(module, tmp_path / "m.ckpt")
    model = glowapp.load(path)
    with torch.no_grad():
        torch.testing.assert_close(
            model.bits_per_dim(images, noise=False, labels=labels),
            module.bits_per_dim(images, noise=False, labels=labels),
            rtol=0,
            atol=0,
        )
        generator = torch.Generator().manual_seed(3)
        torch.testing.assert_close(
            model.sample(5, 0.8, generator), module.sample(5, 0.8, torch.Generator().manual_seed(3))
        )
    assert isinstance(load_module(path), GlowModule)
    assert isinstance(glowapp.generate.load_module(path), GlowModule)


def test_names_resolve_from_python_as_in_the_cli() -> None:
    by_name = glowapp.load("fashion-mnist")
    from glowapp.pretrained import find_shipped

    by_path = glowapp.load(find_shipped("fashion-mnist"))
    for a, b in zip(by_name.state_dict().values(), by_path.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert isinstance(glowapp.generate.load_module("fashion-mnist"), GlowModule)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("fashion-mnst", "nor the name of a shipped model (fashion-mnist"),
        ("no/such/file.ckpt", "no such checkpoint file"),
    ],
)
def test_unknown_names_and_paths_get_one_clear_error(target: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(")):
        glowapp.load(target)


def test_a_checkpoint_whose_weights_do_not_fit_is_refused(tmp_path: Path) -> None:
    module = tiny_glow(side=8)
    state = module.state_dict()
    state.pop(next(iter(state)))
    path = write_checkpoint(module, tmp_path / "m.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["state_dict"] = state
    torch.save(checkpoint, path)
    with pytest.raises(
        CheckpointError, match="does not fit its stored model: missing in checkpoint"
    ):
        glowapp.load(path)


def test_an_unknown_device_is_refused() -> None:
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N"):
        glowapp.load("fashion-mnist", device="tpu")
