"""``glowapp sample``: samples at one or more temperatures, one row (block) each, in a PNG grid;
with ``--out-dir``, also every sample as its own PNG at the model's resolution.

Layout (:func:`row_width`): with several temperatures and ``--num`` ≤ 16 every temperature is one
row of its ``--num`` samples; more samples wrap into a block of ⌈√num⌉-wide rows, and a single
temperature is a square-ish ⌈√num⌉-wide grid. The picture is enlarged for the screen by
``--scale`` (default: ×4 for 28×28 images).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from rich.console import Console
from torch import Tensor

from glowapp.generate import sample_grid
from glowapp.images import display_scale, save_png, tile
from glowapp.tools.common import Tool, load_model
from glowapp.tools.figures import add_scale_argument, write_figure
from glowapp.tools.sampling_options import add_denoise_argument, describe_sampling

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
    """``--num``, ``--temperature``, ``--seed``, ``--nrow``, ``--label``, ``--guidance``,
    ``--denoise``, ``--scale``, ``--out``, ``--out-dir``."""
    parser.add_argument(
        "--num", type=int, default=64, help="samples per temperature (default: %(default)s)"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        default=None,
        metavar="T",
        help="temperatures >= 0 (std scale of every prior), one row (block) each (default: the "
        "model's own, 0.7 unless its checkpoint says otherwise)",
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
    parser.add_argument(
        "--guidance",
        type=float,
        nargs="+",
        default=None,
        metavar="W",
        help="classifier-free guidance weight(s) of a class-conditional model trained with label "
        "dropout, one row (block) each after the temperatures: (1 + W)·conditional − "
        "W·unconditional in every layer; 0 = plain conditional sampling (default: the model's own)",
    )
    add_denoise_argument(parser)
    add_scale_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output PNG grid (default: samples.png, or none when --out-dir is given)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write every sample as its own PNG at the model's resolution: DIR/NNNNN.png "
        "(DIR/W<w>_T<t>_NNNNN.png with several temperatures or guidance weights)",
    )


def run(args: argparse.Namespace, console: Console) -> None:
    """Sample; write the grid (enlarged) and, with ``--out-dir``, every sample's own PNG."""
    model = load_model(args, console).model
    temperatures = args.temperature or [model.sampling.temperature]
    guidances = args.guidance or [None]
    # One block per (guidance, temperature), all from the same noise: rows differ only by them.
    blocks = torch.cat(
        [
            sample_grid(model, temperatures, args.num, args.seed, args.label, w, args.denoise)
            for w in guidances
        ]
    )
    names = [
        ("" if len(guidances) == 1 else f"W{w:g}_") + ("" if len(temperatures) == 1 else f"T{t:g}_")
        for w in guidances
        for t in temperatures
    ]
    temps = ", ".join(f"{t:g}" for t in temperatures)
    classes = f", classes {' '.join(map(str, args.label))}" if args.label else ""
    options = "; ".join(describe_sampling(model, w, args.denoise) for w in guidances)
    settings = f"T = {temps}{classes}{f'; {options}' if options else ''}"
    if args.out_dir is not None:
        write_each(console, blocks, names, args.out_dir, settings)
    if args.out is None and args.out_dir is not None:
        return
    out = Path("samples.png") if args.out is None else args.out
    ncol = row_width(args.num, len(blocks)) if args.nrow is None else args.nrow
    grid = tile(blocks, ncol)  # checks ncol
    rows = math.ceil(args.num / ncol)
    layout = f"{rows} row{'s' if rows > 1 else ''} of {ncol}"
    if len(blocks) > 1:
        layout += " per " + " and ".join(
            what
            for what, count in (
                ("guidance weight", len(guidances)),
                ("temperature", len(temperatures)),
            )
            if count > 1
        )
    scale = display_scale(model.image_shape[1:], args.scale)
    write_figure(console, grid, scale, out, f"{args.num} samples at {settings}; {layout}")


def write_each(
    console: Console, blocks: Tensor, prefixes: list[str], out_dir: Path, settings: str
) -> None:
    """Every sample of ``blocks`` ``[R, n, C, H, W]`` as ``out_dir/<prefix>NNNNN.png`` (block
    ``r``'s prefix ``prefixes[r]``), at the model's resolution."""
    for prefix, block in zip(prefixes, blocks, strict=True):
        for i, image in enumerate(block):
            save_png(image, out_dir / f"{prefix}{i:05d}.png")
    count = blocks.shape[0] * blocks.shape[1]
    console.print(
        f"wrote {count} PNGs of {blocks.shape[-1]}x{blocks.shape[-2]} pixels to {out_dir} "
        f"({settings})"
    )


TOOL = Tool(
    "sample", "sample images at one or more temperatures into a PNG grid", add_arguments, run
)
