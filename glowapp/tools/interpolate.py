"""``glowapp interpolate``: a PNG row of images along the latent path between two photos,
enlarged for the screen by ``--scale`` (default: ×4 for 28×28 images)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from glowapp.generate import INTERPOLATION_MODES, interpolate
from glowapp.images import display_scale, tile
from glowapp.tools.common import Tool, add_image_arguments, load_images, load_model
from glowapp.tools.figures import add_scale_argument, write_figure
from glowapp.tools.sampling_options import add_denoise_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The two endpoint images, ``--steps``, ``--mode``, ``--denoise``, ``--scale``, ``--out``."""
    add_image_arguments(parser, 2, "the two endpoints")
    parser.add_argument(
        "--steps",
        type=int,
        default=8,
        help="images in the row, endpoints included (>= 2; default: %(default)s)",
    )
    parser.add_argument(
        "--mode",
        default="linear",
        metavar="MODE",
        help=f"interpolation of every level's latent: {' or '.join(INTERPOLATION_MODES)} "
        "(default: %(default)s)",
    )
    add_denoise_argument(parser)
    add_scale_argument(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("interp.png"), help="output PNG (default: %(default)s)"
    )


def run(args: argparse.Namespace, console: Console) -> None:
    """Load the model and both photos, interpolate, write the row."""
    model = load_model(args, console).model
    scale = display_scale(model.image_shape[1:], args.scale)
    a, b = (image.image[None] for image in load_images(args.images, model, console))
    grid = tile(interpolate(model, a, b, args.steps, args.mode, args.denoise), args.steps)
    write_figure(console, grid, scale, args.out, f"{args.steps} steps, {args.mode}")


TOOL = Tool(
    "interpolate", "interpolate in latent space between two images (PNG row)", add_arguments, run
)
