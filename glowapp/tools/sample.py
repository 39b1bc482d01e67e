"""``glowapp sample``: samples at one or more temperatures, one row (block) each, in a PNG grid.

Layout (:func:`row_width`): with several temperatures and ``--num`` ≤ 16 every temperature is one
row of its ``--num`` samples; more samples wrap into a block of ⌈√num⌉-wide rows, and a single
temperature is a square-ish ⌈√num⌉-wide grid. The picture is enlarged for the screen by
``--scale`` (default: ×4 for 28×28 images).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console

from glowapp.generate import sample_grid
from glowapp.images import display_scale, tile
from glowapp.tools.common import Tool, load_model
from glowapp.tools.figures import add_scale_argument, write_figure

ONE_ROW_MAX = 16
"""Most samples per temperature that :func:`row_width` puts in a single row."""


def row_width(num: int, temperatures: int) -> int:
    """Default images per grid row for ``num`` samples at each of ``temperatures`` temperatures.

    ``num`` (one row per temperature) when there are several temperatures and ``num`` ≤
    :data:`ONE_ROW_MAX`, else ⌈√num⌉ (a square-ish block per temperature).
    """
    if temperatures > 1 and num <= ONE_ROW_MAX:
        return num
    return math.ceil(math.sqrt(num))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--num``, ``--temperature``, ``--seed``, ``--nrow``, ``--label``, ``--scale``, ``--out``."""
    parser.add_argument(
        "--num", type=int, default=64, help="samples per temperature (default: %(default)s)"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        default=[0.7],
        metavar="T",
        help="temperatures >= 0 (std scale of every prior), one row (block) each (default: 0.7)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the latent noise, shared by all temperatures (default: %(default)s)",
    )
    parser.add_argument(
        "--nrow",
        type=int,
        default=None,
        help=f"images per grid row (default: num with several temperatures and num <= "
        f"{ONE_ROW_MAX}, so each temperature is one row; else ⌈√num⌉)",
    )
    parser.add_argument(
        "--label",
        type=int,
        nargs="+",
        default=None,
        metavar="Y",
        help="class(es) to sample from a class-conditional checkpoint, repeated over the samples "
        "(default: every class in turn)",
    )
    add_scale_argument(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("samples.png"), help="output PNG (default: %(default)s)"
    )


def run(args: argparse.Namespace, console: Console) -> None:
    """Sample, tile, enlarge and write the grid."""
    module = load_model(args)
    scale = display_scale(module.image_shape[1:], args.scale)
    samples = sample_grid(module, args.temperature, args.num, seed=args.seed, labels=args.label)
    ncol = row_width(args.num, len(args.temperature)) if args.nrow is None else args.nrow
    grid = tile(samples, ncol)
    temps = ", ".join(f"{t:g}" for t in args.temperature)
    classes = f", classes {' '.join(map(str, args.label))}" if args.label else ""
    rows = math.ceil(args.num / ncol)
    layout = f"{rows} row{'s' if rows > 1 else ''} of {ncol}"
    if len(args.temperature) > 1:
        layout += " per temperature"
    what = f"{args.num} samples at T = {temps}{classes}; {layout}"
    write_figure(console, grid, scale, args.out, what)


TOOL = Tool(
    "sample", "sample images at one or more temperatures into a PNG grid", add_arguments, run
)
