"""Tiny untrained models and folders of images for the out-of-distribution tests.

Every test here runs in its own temporary folder (named data sets are unpacked under it, never
under the repository's data/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.generation import tiny_glow, write_checkpoint
from PIL import Image

from glowapp.data.named import load_named_split

REFERENCE_IMAGES = 25
"""Images in the reference folder (a threshold needs at least 20)."""


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Checkpoints of untrained tiny Glows: ``model`` and ``background`` (1x28x28), ``wide``
    (1x32x32)."""
    folder = tmp_path_factory.mktemp("models")
    return {
        "model": write_checkpoint(tiny_glow(seed=0), folder / "model.ckpt"),
        "background": write_checkpoint(tiny_glow(seed=1), folder / "background.ckpt"),
        "wide": write_checkpoint(tiny_glow(side=32), folder / "wide.ckpt"),
    }


def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    """uint8 ``[N, 1, H, W]`` images as ``folder/NNN.png``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="session")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Image folders: ``reference`` (Fashion-MNIST test images), ``flipped`` (others, upside
    down), ``noise`` (uniform noise), ``rgb`` (32x32 colour noise), ``empty`` (no images)."""
    root = tmp_path_factory.mktemp("sets")
    images, _ = load_named_split("fashion-mnist", "test", root / "data", limit=60)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (12, 1, 28, 28), generator=generator, dtype=torch.uint8)
    rgb = root / "rgb"
    rgb.mkdir()
    for i in range(6):
        pixels = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(rgb / f"{i}.png")
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("not an image")
    return {
        "reference": write_pngs(root / "reference", images[:REFERENCE_IMAGES]),
        "flipped": write_pngs(root / "flipped", images[40:52].flip(2)),
        "noise": write_pngs(root / "noise", noise),
        "small": write_pngs(root / "small", images[:10]),
        "rgb": rgb,
        "empty": root / "empty",
    }
