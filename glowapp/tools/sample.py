"""``glowapp sample``: samples at one or more temperatures, one row block each, in a PNG grid."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console

from glowapp.generate import sample_grid
from glowapp.images import save_png, tile
from glowapp.tools.common import Tool, load_model, wrote


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--num``, ``--temperature``, ``--seed``, ``--nrow``, ``--label``, ``--out``."""
    parser.add_argument(
        "--num", type=int, default=64, help="samples per temperature (default: %(default)s)"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        default=[0.7],
        metavar="T",
        help="temperatures >= 0 (std scale of every prior), one row block each (default: 0.7)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the latent noise, shared by all temperatures (default: %(default)s)",
    )
    parser.add_argument(
        "--nrow", type=int, default=None, help="images per grid row (default: ⌈√num⌉)"
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
    parser.add_argument(
        "--out", type=Path, default=Path("samples.png"), help="output PNG (default: %(default)s)"
    )


def run(args: argparse.Namespace, console: Console) -> None:
    """Sample, tile and write the grid."""
    module = load_model(args)
    samples = sample_grid(module, args.temperature, args.num, seed=args.seed, labels=args.label)
    grid = tile(samples, math.ceil(math.sqrt(args.num)) if args.nrow is None else args.nrow)
    temps = ", ".join(f"{t:g}" for t in args.temperature)
    classes = f", classes {' '.join(map(str, args.label))}" if args.label else ""
    wrote(console, save_png(grid, args.out), grid, f"{args.num} samples at T = {temps}{classes}")


TOOL = Tool(
    "sample", "sample images at one or more temperatures into a PNG grid", add_arguments, run
)
