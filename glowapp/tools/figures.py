"""What the picture-writing commands (``sample``, ``interpolate``, ``inpaint``) share: ``--scale``
and writing a figure enlarged for the screen."""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from torch import Tensor

from glowapp.images import DISPLAY_CELL, enlarge, save_png
from glowapp.tools.common import wrote


def scale_value(text: str) -> int | None:
    """A ``--scale`` value: ``auto`` → ``None`` (:func:`~glowapp.images.display_scale` picks),
    else an integer; anything else is a usage error. A number below 1 is left to
    :func:`~glowapp.images.display_scale` to refuse."""
    if text.strip().lower() == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or an integer, got {text!r}") from None


def add_scale_argument(parser: argparse.ArgumentParser) -> None:
    """``--scale K|auto``: the integer nearest-neighbour enlargement of the written PNG."""
    parser.add_argument(
        "--scale",
        type=scale_value,
        default=None,
        metavar="K",
        help="enlarge the PNG K times, nearest neighbour (every model pixel a sharp K×K square); "
        f"auto: the smallest K that makes each image at least {DISPLAY_CELL} pixels (4 for "
        "28×28 images, 2 for 64×64, 1 from 96×96 up); 1: native size (default: auto)",
    )


def write_figure(
    console: Console, grid: Tensor, scale: int, path: str | os.PathLike[str], what: str
) -> Tensor:
    """Enlarge ``grid`` ``[3, H, W]`` ``scale`` times, write it as a PNG and print the
    ``wrote PATH (what; WxH pixels)`` line with the size written. Returns the enlarged grid."""
    grid = enlarge(grid, scale)
    if scale > 1:
        what = f"{what}, enlarged ×{scale}"
    wrote(console, save_png(grid, path), grid, what)
    return grid
