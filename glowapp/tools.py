"""The ``glowapp sample|interpolate|inpaint|score|demo`` commands.

:data:`TOOLS` maps each command name to a :class:`Tool`; :func:`glowapp.cli.main` dispatches
to ``TOOLS[name].run(argv)`` and lists every ``summary`` in ``glowapp --help``. All the math is
in :mod:`glowapp.generate`. Exit codes: 0 success, 1 a bad input (missing or unreadable file,
bad checkpoint, unavailable device: one ``glowapp CMD: error: ...`` line on stderr), 2 a usage
error (argparse).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from glowapp.data.images import ImageLoadError, LoadedImage, load_image
from glowapp.generate import (
    INTERPOLATION_MODES,
    MASK_KINDS,
    CheckpointError,
    class_labels,
    inpaint,
    inpainting_rows,
    interpolate,
    load_module,
    log_prob_to_bits_per_dim,
    resolve_device,
    resolve_mask,
    sample_grid,
    save_png,
    score,
    tile,
    write_atomically,
)
from glowapp.module import GlowModule

__all__ = ["TOOLS", "Tool", "ToolError"]


class ToolError(ValueError):
    """A user-facing error of a command (printed as one line, exit status 1)."""


@dataclass(frozen=True)
class Tool:
    """A ``glowapp`` subcommand: its one-line ``summary``, its options, and what it does."""

    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    action: Callable[[argparse.Namespace, Console], None]

    def parser(self) -> argparse.ArgumentParser:
        """The command's argument parser (``--ckpt`` and ``--device`` included)."""
        parser = argparse.ArgumentParser(prog=f"glowapp {self.name}", description=self.summary)
        parser.add_argument(
            "--ckpt",
            required=True,
            metavar="PATH",
            help="checkpoint (.ckpt) written by `glowapp fit`",
        )
        parser.add_argument(
            "--device",
            default="auto",
            choices=("auto", "cpu", "cuda"),
            help="where to run the model: auto = CUDA if available, else CPU (default: auto)",
        )
        self.add_arguments(parser)
        return parser

    def run(self, argv: list[str]) -> int:
        """Parse ``argv`` and run; returns the exit status (0 ok, 1 bad input, 2 usage error)."""
        try:
            args = self.parser().parse_args(argv)
        except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
            return exit_.code if isinstance(exit_.code, int) else 2
        try:
            self.action(args, Console(highlight=False, soft_wrap=True))
        except (ToolError, CheckpointError, ImageLoadError, OSError) as err:
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"glowapp {self.name}: error: {message}", file=sys.stderr)
            return 1
        return 0


# ---- shared pieces ----------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> GlowModule:
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        raise ToolError(str(err)) from None
    return load_module(args.ckpt, device)


def _load_images(paths: list[str], module: GlowModule, console: Console) -> list[LoadedImage]:
    """Load photos as the model's uint8 ``[C, H, W]``, saying what had to change for each."""
    loaded = [load_image(path, module.image_shape) for path in paths]
    shape = "x".join(map(str, module.image_shape))
    for path, image in zip(paths, loaded, strict=True):
        if image.changed:
            console.print(f"{path}: {image.description} to fit the model's {shape} (CxHxW) input")
    return loaded


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _wrote(console: Console, path: Path, grid: torch.Tensor, what: str) -> None:
    console.print(f"wrote {path} ({what}; {grid.shape[2]}x{grid.shape[1]} pixels)")


# ---- sample -----------------------------------------------------------------------------------


def _sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--num",
        type=_positive_int,
        default=64,
        help="samples per temperature (default: %(default)s)",
    )
    parser.add_argument(
        "--temperature",
        type=_non_negative_float,
        nargs="+",
        default=[0.7],
        metavar="T",
        help="temperatures (std scale of every prior), one row block each (default: 0.7)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the latent noise, shared by all temperatures (default: %(default)s)",
    )
    parser.add_argument(
        "--nrow", type=_positive_int, default=None, help="images per grid row (default: ⌈√num⌉)"
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


def _sample(args: argparse.Namespace, console: Console) -> None:
    module = _load(args)
    try:
        class_labels(module, args.label, args.num)
    except ValueError as err:
        raise ToolError(f"--label: {err}") from None
    ncol = args.nrow or math.ceil(math.sqrt(args.num))
    samples = sample_grid(module, args.temperature, args.num, seed=args.seed, labels=args.label)
    grid = tile(samples, ncol)
    temps = ", ".join(f"{t:g}" for t in args.temperature)
    classes = f", classes {' '.join(map(str, args.label))}" if args.label else ""
    _wrote(console, save_png(grid, args.out), grid, f"{args.num} samples at T = {temps}{classes}")


# ---- interpolate ------------------------------------------------------------------------------


def _interpolate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images",
        nargs=2,
        metavar="IMAGE",
        help="the two endpoints (any photos: converted, resized and center-cropped to the model)",
    )
    parser.add_argument(
        "--steps",
        type=_positive_int,
        default=8,
        help="images in the row, endpoints included (>= 2; default: %(default)s)",
    )
    parser.add_argument(
        "--mode",
        choices=INTERPOLATION_MODES,
        default="linear",
        help="interpolation of every level's latent (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("interp.png"), help="output PNG (default: %(default)s)"
    )


def _interpolate(args: argparse.Namespace, console: Console) -> None:
    if args.steps < 2:
        raise ToolError(f"--steps must be at least 2 (the two endpoints), got {args.steps}")
    module = _load(args)
    a, b = (image.image[None] for image in _load_images(args.images, module, console))
    grid = tile(interpolate(module, a, b, steps=args.steps, mode=args.mode), args.steps)
    _wrote(console, save_png(grid, args.out), grid, f"{args.steps} steps, {args.mode}")


# ---- inpaint ----------------------------------------------------------------------------------


def _inpaint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image(s) to complete (converted, resized and center-cropped to the model's shape)",
    )
    parser.add_argument(
        "--mask",
        default="center",
        metavar="MASK",
        help=f"region to fill: {'|'.join(MASK_KINDS)} or a mask image, white = hidden "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--fraction",
        type=_fraction,
        default=None,
        help="share of the image a built-in mask hides (default: 0.25 for center, 0.5 otherwise)",
    )
    parser.add_argument(
        "--iterations", type=int, default=500, help="gradient-ascent steps (default: %(default)s)"
    )
    parser.add_argument(
        "--step-size",
        type=_non_negative_float,
        default=1e-3,
        help="initial step α0, decaying as α0 / (1 + k / decay-steps) (default: %(default)s)",
    )
    parser.add_argument(
        "--decay-steps",
        type=_non_negative_float,
        default=100.0,
        help="τ of the step-size decay, in steps (default: %(default)s)",
    )
    parser.add_argument(
        "--noise-scale",
        type=_non_negative_float,
        default=0.0,
        help="initial std of Gaussian noise added each step, annealed to 0 (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the noise start, the noise and a random mask (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("inpaint.png"),
        help="output PNG: rows masked input / completion / original (default: %(default)s)",
    )


def _inpaint(args: argparse.Namespace, console: Console) -> None:
    if args.iterations < 0:
        raise ToolError(f"--iterations must be >= 0, got {args.iterations}")
    if args.decay_steps <= 0:
        raise ToolError(f"--decay-steps must be positive, got {args.decay_steps}")
    module = _load(args)
    images = torch.stack([image.image for image in _load_images(args.images, module, console)])
    try:
        mask = resolve_mask(args.mask, module.image_shape[1:], args.fraction, args.seed)
    except ImageLoadError as err:
        raise ToolError(
            f"--mask: {err} (expected {'|'.join(MASK_KINDS)} or a mask image)"
        ) from None
    columns = (TextColumn("inpainting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("inpaint", total=args.iterations)
        result = inpaint(
            module,
            images,
            mask,
            iterations=args.iterations,
            step_size=args.step_size,
            decay_steps=args.decay_steps,
            noise_scale=args.noise_scale,
            seed=args.seed,
            progress=lambda k: progress.update(task, completed=k),
        )
    before, after = result.log_prob[0], result.log_prob[-1]
    bpd_before, bpd_after = (
        log_prob_to_bits_per_dim(module, before),
        log_prob_to_bits_per_dim(module, after),
    )
    for i, path in enumerate(args.images):
        console.print(
            f"{path}: log p(y) {before[i]:.1f} → {after[i]:.1f} nats "
            f"({bpd_before[i]:.3f} → {bpd_after[i]:.3f} bits/dim)"
        )
    grid = tile(inpainting_rows(images, mask, result), len(images))
    hidden = int(mask.sum())
    _wrote(
        console,
        save_png(grid, args.out),
        grid,
        f"{hidden} hidden pixels, {args.iterations} iterations",
    )


# ---- score ------------------------------------------------------------------------------------


def _score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="images to score (converted, resized and center-cropped to the model's shape)",
    )
    parser.add_argument(
        "--noise-samples",
        type=int,
        default=0,
        help="0: score the bin centres (deterministic, default); K > 0: average K uniform "
        "dequantisations",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the dequantisation noise (default: %(default)s)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the scores to this JSON file",
    )


def _score(args: argparse.Namespace, console: Console) -> None:
    if args.noise_samples < 0:
        raise ToolError(f"--noise-samples must be >= 0, got {args.noise_samples}")
    module = _load(args)
    loaded = _load_images(args.images, module, console)
    bpd = score(
        module, torch.stack([image.image for image in loaded]), args.noise_samples, args.seed
    )
    method = (
        "bin centres"
        if args.noise_samples == 0
        else f"mean of {args.noise_samples} dequantisations"
    )
    table = Table(title=f"bits/dim ({method}; lower = more likely)")
    table.add_column("image", overflow="fold")
    table.add_column("bits/dim", justify="right")
    table.add_column("preprocessing", overflow="fold")
    for path, image, value in zip(args.images, loaded, bpd.tolist(), strict=True):
        table.add_row(path, f"{value:.4f}", image.description)
    console.print(table)
    if args.json is not None:
        records = [
            {"image": path, "bits_per_dim": value, "preprocessing": list(image.changes)}
            for path, image, value in zip(args.images, loaded, bpd.tolist(), strict=True)
        ]
        document = {"checkpoint": str(args.ckpt), "method": method, "scores": records}
        path = write_atomically(args.json, (json.dumps(document, indent=2) + "\n").encode())
        console.print(f"wrote {path}")


# ---- demo -------------------------------------------------------------------------------------

DEMO_MODULES = ("gradio", "skimage")
"""Top-level modules of the ``demo`` extra that ``glowapp demo`` needs."""


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number in 1..65535, got {value}")
    return value


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default: %(default)s, this machine only; 0.0.0.0 opens the "
        "demo, without authentication, to the network)",
    )
    parser.add_argument(
        "--port", type=_port, default=7860, help="port to serve on (default: %(default)s)"
    )


def _demo(args: argparse.Namespace, console: Console) -> None:
    try:
        from glowapp.demo.app import serve
    except ModuleNotFoundError as err:
        if err.name not in DEMO_MODULES:
            raise
        raise ToolError(
            f"the web demo needs {err.name}, which is not installed: pip install 'glowapp[demo]'"
        ) from None
    serve(_load(args), args.host, args.port, console)


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "sample",
            "sample images at one or more temperatures into a PNG grid",
            _sample_arguments,
            _sample,
        ),
        Tool(
            "interpolate",
            "interpolate in latent space between two images (PNG row)",
            _interpolate_arguments,
            _interpolate,
        ),
        Tool(
            "inpaint",
            "fill a masked region of images by gradient ascent on log p",
            _inpaint_arguments,
            _inpaint,
        ),
        Tool(
            "score",
            "bits/dim of image files under a model (table, optional JSON)",
            _score_arguments,
            _score,
        ),
        Tool(
            "demo",
            "web demo in the browser: sample, interpolate, inpaint and score (glowapp[demo])",
            _demo_arguments,
            _demo,
        ),
    )
}
"""Every generation command, by name."""
