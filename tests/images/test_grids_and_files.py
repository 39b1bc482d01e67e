"""glowapp.images: grids, masked views, inpainting figures and atomic PNG writing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.generation import tiny_glow
from PIL import Image

from glowapp.generate import inpaint, make_mask
from glowapp.images import (
    display_scale,
    enlarge,
    inpainting_rows,
    masked_view,
    save_png,
    tile,
    transpose_blocks,
    write_atomically,
)


def test_tile_lays_out_row_blocks_and_save_png_writes_it(tmp_path: Path) -> None:
    blocks = [torch.rand(5, 1, 28, 28), torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8)]
    grid = tile(blocks, ncol=3)
    # Block 1 takes 2 rows (5 images, 3 per row), block 2 one row: 3 rows of 3.
    assert grid.shape == (3, 3 * 30 + 2, 3 * 30 + 2)
    path = save_png(grid, tmp_path / "sub" / "grid.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (92, 92)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary file left


def test_tile_checks_the_row_width() -> None:
    with pytest.raises(ValueError) as info:
        tile([torch.rand(2, 1, 8, 8)], ncol=0)
    assert str(info.value) == "images per row (ncol) must be at least 1, got 0"


def test_display_scale_makes_cells_at_least_96_pixels() -> None:
    sizes = [(28, 28), (32, 32), (64, 64), (95, 95), (96, 96), (256, 256), (28, 64)]
    assert [display_scale(size) for size in sizes] == [4, 3, 2, 2, 1, 1, 4]
    assert display_scale((28, 28), 1) == 1 and display_scale((256, 256), 3) == 3
    for bad in (0, -2):
        with pytest.raises(ValueError) as info:
            display_scale((28, 28), bad)
        assert str(info.value) == f"the scale (enlargement factor) must be at least 1, got {bad}"


def test_enlarge_is_nearest_neighbour(tmp_path: Path) -> None:
    grid = tile([torch.rand(5, 1, 28, 28), torch.rand(3, 3, 28, 28)], ncol=4)
    assert enlarge(grid, 1) is grid
    big = enlarge(grid, 4)
    assert big.shape == (3, 4 * grid.shape[1], 4 * grid.shape[2])
    # Every 4x4 block is one native pixel's value: no blur, padding scaled with the images.
    blocks = big.reshape(3, grid.shape[1], 4, grid.shape[2], 4)
    assert torch.equal(blocks, grid[:, :, None, :, None].expand_as(blocks))
    with Image.open(save_png(big, tmp_path / "big.png")) as png:
        assert png.size == (4 * grid.shape[2], 4 * grid.shape[1])
    with pytest.raises(ValueError, match="at least 1, got 0"):
        enlarge(grid, 0)


def test_transpose_blocks_turns_rows_into_columns() -> None:
    rows = [
        torch.rand(2, 3, 8, 8),
        torch.rand(2, 1, 8, 8),
        torch.zeros(2, 1, 8, 8, dtype=torch.uint8),
    ]
    blocks = transpose_blocks(rows)
    assert blocks.shape == (2, 3, 3, 8, 8)  # one block per image, one image per former row
    assert torch.equal(blocks[1, 0], rows[0][1])
    assert torch.equal(blocks[0, 1], rows[1][0].expand(3, -1, -1))
    assert torch.equal(blocks[1, 2], torch.zeros(3, 8, 8))
    grid = tile(blocks, len(rows))
    assert grid.shape == (3, 2 * 10 + 2, 3 * 10 + 2)  # 2 rows of 3


def test_masked_view_paints_hidden_pixels_magenta() -> None:
    images = torch.full((1, 3, 4, 4), 51, dtype=torch.uint8)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 1] = True
    view = masked_view(images, mask)
    assert torch.equal(view[0, :, 0, 1], torch.tensor([1.0, 0.0, 1.0]))
    assert torch.allclose(view[0, :, 1, 1], torch.full((3,), 0.2))


def test_inpainting_rows_mark_the_hidden_region() -> None:
    images = torch.full((2, 1, 28, 28), 128, dtype=torch.uint8)
    mask = make_mask("top", (28, 28))
    result = inpaint(tiny_glow(), images, mask, iterations=0)
    masked, completed, truth = inpainting_rows(images, mask, result.images)
    assert masked.shape == (2, 3, 28, 28)
    assert torch.equal(masked[:, :, 0, 0], torch.tensor([[1.0, 0.0, 1.0]] * 2))
    assert torch.allclose(masked[:, :, -1, -1], torch.full((2, 3), 128 / 255))
    assert completed.shape == truth.shape == (2, 1, 28, 28)


def test_write_atomically_names_the_file_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError) as info:
        write_atomically(blocker / "scores.json", b"{}")
    assert str(info.value).startswith(f"cannot write {blocker / 'scores.json'}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
