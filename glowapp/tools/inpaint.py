"""``glowapp inpaint``: fill a masked region of images; one PNG row per image: masked input,
completion, original; enlarged for the screen by ``--scale`` (default: ×4 for 28×28 images)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from glowapp.generate import inpaint, log_prob_to_bits_per_dim
from glowapp.generate.inpainting import ITERATIONS
from glowapp.images import display_scale, inpainting_rows, tile, transpose_blocks
from glowapp.masks import MASK_KINDS, resolve_mask
from glowapp.tools.common import Tool, add_image_arguments, load_images, load_model
from glowapp.tools.figures import add_scale_argument, write_figure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The images, the mask, :func:`glowapp.generate.inpaint`'s options, ``--scale``, ``--out``."""
    add_image_arguments(parser, "+", "image(s) to complete")
    parser.add_argument(
        "--mask",
        default="center",
        metavar="MASK",
        help=f"region to fill: {'|'.join(MASK_KINDS)} or a mask image, white = hidden "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--fraction",
        type=float,
        default=None,
        help="share (0, 1] of the image a built-in mask hides (default: 0.25 for center, 0.5 "
        "otherwise)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=ITERATIONS,
        help="limit of optimiser iterations; fewer when log p stops rising (default: %(default)s)",
    )
    parser.add_argument(
        "--step-size",
        type=float,
        default=0.1,
        help="Adam's learning rate, in logit units of the hidden pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="stop when log p changed by less than this share over the last 5 iterations "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of a random mask (default: %(default)s)",
    )
    add_scale_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("inpaint.png"),
        help="output PNG, one row per image: masked input, completion, original "
        "(default: %(default)s)",
    )


def run(args: argparse.Namespace, console: Console) -> None:
    """Inpaint with a progress bar, print each image's log p before → after, write the figure."""
    model = load_model(args, console).model
    scale = display_scale(model.image_shape[1:], args.scale)
    images = torch.stack([image.image for image in load_images(args.images, model, console)])
    mask = resolve_mask(args.mask, model.image_shape[1:], args.fraction, args.seed)
    columns = (TextColumn("inpainting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("inpaint", total=args.iterations)
        result = inpaint(
            model,
            images,
            mask,
            iterations=args.iterations,
            step_size=args.step_size,
            tolerance=args.tolerance,
            progress=lambda k: progress.update(task, completed=k),
        )
    before, after = result.log_prob[0], result.log_prob[-1]
    bpd_before = log_prob_to_bits_per_dim(model, before)
    bpd_after = log_prob_to_bits_per_dim(model, after)
    for i, path in enumerate(args.images):
        console.print(
            f"{path}: log p(y) {before[i]:.1f} → {after[i]:.1f} nats "
            f"({bpd_before[i]:.3f} → {bpd_after[i]:.3f} bits/dim)"
        )
    columns = inpainting_rows(images, mask, result.images)  # masked input, completion, original
    grid = tile(transpose_blocks(columns), len(columns))
    stopped = "converged" if result.converged else "the limit"
    what = f"{int(mask.sum())} hidden pixels, {result.iterations} iterations ({stopped})"
    write_figure(console, grid, scale, args.out, what)


TOOL = Tool(
    "inpaint", "fill a masked region of images with its most likely completion", add_arguments, run
)
