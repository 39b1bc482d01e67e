"""glowapp.generate.masks: the built-in masks, mask images, and the checks of their arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from glowapp.masks import MASK_KINDS, make_mask, resolve_mask


def test_masks() -> None:
    size = (28, 28)
    for kind in MASK_KINDS:
        mask = make_mask(kind, size)
        assert mask.shape == size and mask.dtype == torch.bool
    assert make_mask("center", size).sum() == 14 * 14
    assert make_mask("center", size)[7:21, 7:21].all()
    assert make_mask("left", size)[:, :14].all() and not make_mask("left", size)[:, 14:].any()
    assert make_mask("right", size)[:, 14:].all() and not make_mask("right", size)[:, :14].any()
    assert make_mask("top", size)[:14].all() and not make_mask("top", size)[14:].any()
    assert make_mask("bottom", size)[14:].all() and not make_mask("bottom", size)[:14].any()
    assert make_mask("top", size, fraction=0.25).sum() == 7 * 28
    random = make_mask("random", size, fraction=0.3, seed=4)
    assert torch.equal(random, make_mask("random", size, fraction=0.3, seed=4))
    assert 0.2 < random.float().mean() < 0.4


@pytest.mark.parametrize(
    ("kind", "fraction", "message"),
    [
        (
            "circle",
            None,
            "mask must be one of center, left, right, top, bottom, random, got 'circle'",
        ),
        ("left", 0.0, "mask fraction must be in (0, 1], got 0.0"),
        ("center", 1.5, "mask fraction must be in (0, 1], got 1.5"),
    ],
)
def test_mask_arguments_are_checked(kind: str, fraction: float | None, message: str) -> None:
    with pytest.raises(ValueError) as info:
        make_mask(kind, (28, 28), fraction)
    assert str(info.value) == message


def test_resolve_mask_reads_mask_images_white_hidden(tmp_path: Path) -> None:
    picture = Image.new("L", (56, 56), 0)
    picture.paste(255, (0, 0, 28, 56))  # left half white, at twice the model's size
    picture.save(tmp_path / "mask.png")
    assert torch.equal(
        resolve_mask(str(tmp_path / "mask.png"), (28, 28)), make_mask("left", (28, 28))
    )
    assert torch.equal(resolve_mask("top", (28, 28), 0.25), make_mask("top", (28, 28), 0.25))


def test_resolve_mask_names_both_kinds_of_mask_when_neither_fits(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.png"
    with pytest.raises(ValueError) as info:
        resolve_mask(str(missing), (28, 28))
    assert str(info.value) == (
        "mask must be one of center, left, right, top, bottom, random or a mask image "
        f"(white = hidden); {missing}: no such file"
    )
