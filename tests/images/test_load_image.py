"""load_image: one image file prepared for a model (mode, resize, crop), as the CLI tools use it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from glowapp.images import ImageLoadError, load_image


def test_load_image_converts_and_resizes(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(np.full((96, 128, 3), (200, 30, 30), dtype=np.uint8)).save(path)
    loaded = load_image(path, (1, 28, 28))
    assert loaded.image.dtype == torch.uint8
    assert tuple(loaded.image.shape) == (1, 28, 28)
    assert loaded.changed
    assert loaded.changes[0] == "converted RGB→L"
    assert "resized 128x96→37x28" in loaded.description
    assert "center-cropped to 28x28" in loaded.description


def test_load_image_square_and_unchanged(tmp_path):
    path = tmp_path / "square.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(path)
    assert load_image(path, (3, 28, 28)).description == "resized 64x64→28x28"
    same = load_image(path, (3, 64, 64))
    assert not same.changed and same.description == "unchanged"


def test_load_image_composites_transparency_on_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.fromarray(np.zeros((8, 8, 4), dtype=np.uint8)).save(path)  # fully transparent black
    loaded = load_image(path, (3, 8, 8))
    assert loaded.changes == ("converted RGBA→RGB",)
    assert int(loaded.image.min()) == 255


def test_load_image_rejects_non_images(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ImageLoadError, match="notes.txt"):
        load_image(text, (1, 28, 28))
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageLoadError, match="truncated.png") as info:
        load_image(truncated, (3, 28, 28))
    assert "\n" not in str(info.value)
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.png", (3, 28, 28))


def test_glowapp_data_reexports_load_image():
    import glowapp.data

    assert glowapp.data.load_image is load_image
    assert glowapp.data.ImageLoadError is ImageLoadError
