"""Reading the web demo's display images back as model pixels, for the demo tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from glowapp.demo.handlers import DISPLAY_SIDE, Upload

SIDE = 28
"""Side of the demo tests' model images."""
FACTOR = DISPLAY_SIDE // SIDE
"""The demo's display enlargement of 28x28 images."""
CELL = SIDE + 2
"""An image plus tile()'s padding."""


def upload(path: Path) -> Upload:
    """``path`` as an upload the user knows by its file name."""
    return Upload(path, path.name)


def pixels(image: Image.Image) -> np.ndarray:
    """A display image shrunk back to model pixels: ``[H, W, 3]`` uint8."""
    return np.asarray(image.convert("RGB"))[::FACTOR, ::FACTOR]


def cell(grid: np.ndarray, row: int, column: int) -> np.ndarray:
    """Image ``(row, column)`` of a :func:`pixels` grid, ``[28, 28]`` (first channel)."""
    top, left = 2 + row * CELL, 2 + column * CELL
    return grid[top : top + SIDE, left : left + SIDE, 0]


def hidden_pixels(masked: Image.Image) -> np.ndarray:
    """Where a masked view (one image) shows the mask's magenta, ``[28, 28]`` bool."""
    return (pixels(masked) == (255, 0, 255)).all(axis=-1)


def model_view(path: Path) -> np.ndarray:
    """What the model sees of an example photo, ``[28, 28]`` uint8."""
    return np.asarray(Image.open(path).convert("L"))
