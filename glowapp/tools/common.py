"""What every generation command shares: the :class:`Tool` record, ``--ckpt``/``--device``,
loading the model (a checkpoint path or a shipped model's name; the default shipped model when
``--ckpt`` is omitted) and the images, and the line that reports a written file."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from glowapp.image_flow import ImageFlow
from glowapp.images import LoadedImage, load_image
from glowapp.loading import load
from glowapp.pretrained import DEFAULT_MODEL, SHIPPED, display_path, resolve_checkpoint


class ToolError(ValueError):
    """A command that cannot run as asked for a reason no argument check covers (e.g. a missing
    optional dependency); printed as one ``glowapp: error: ...`` line like every ValueError."""


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
            default=None,
            metavar="PATH|NAME",
            help="checkpoint (.ckpt) written by `glowapp fit`, or the name of a shipped model: "
            f"{', '.join(SHIPPED)} (default: {DEFAULT_MODEL})",
        )
        parser.add_argument(
            "--device",
            default="auto",
            help="where to run the model: auto (CUDA if available, else CPU), cpu, cuda or "
            "cuda:N (default: auto)",
        )
        self.add_arguments(parser)
        return parser

    def run(self, argv: list[str]) -> int:
        """Parse ``argv`` and run; returns the exit status (0 ok, 2 usage error).

        Every other error is raised as it comes (a ``ValueError`` from the argument's check in
        :mod:`glowapp.generate`, a :class:`~glowapp.checkpointing.CheckpointError`, an
        :class:`~glowapp.images.ImageLoadError`, an ``OSError``): :func:`glowapp.cli.main` prints
        it as one ``glowapp: error: ...`` line and exits 1.
        """
        try:
            args = self.parser().parse_args(argv)
        except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
            return exit_.code if isinstance(exit_.code, int) else 2
        console = Console(highlight=False, soft_wrap=True)
        self.action(args, console)
        return 0


def add_image_arguments(parser: argparse.ArgumentParser, nargs: int | str, what: str) -> None:
    """The positional ``IMAGE`` files (``nargs`` as argparse takes it), described as ``what``."""
    parser.add_argument(
        "images",
        nargs=nargs,
        metavar="IMAGE",
        help=f"{what} (any photos: converted, resized and center-cropped to the model's input)",
    )


@dataclass(frozen=True)
class LoadedModel:
    """A command's model and where it came from."""

    model: ImageFlow
    path: Path
    """The checkpoint file it was read from."""
    name: str
    """What the user gave (a shipped model's name or a path), or the default model's name."""

    @property
    def label(self) -> str:
        """How reports name the checkpoint: the shipped model's name, or the file's path
        relative to the working directory (absolute only outside it)."""
        return self.name if self.name in SHIPPED else display_path(self.path)


def load_model(args: argparse.Namespace, console: Console) -> LoadedModel:
    """The model ``--ckpt`` names (a path or a shipped model's name; the default shipped model,
    announced in one line, when omitted) on ``--device``, in eval mode.

    Raises:
        CheckpointError: no such file or shipped model, or not a usable checkpoint.
        ValueError: an unknown ``--device``.
    """
    name = DEFAULT_MODEL if args.ckpt is None else str(args.ckpt)
    path = resolve_checkpoint(name)
    if args.ckpt is None:
        console.print(
            f"using the shipped model {DEFAULT_MODEL} ({display_path(path)}); "
            "pass --ckpt to choose another",
            markup=False,
        )
    return LoadedModel(load(path, args.device), path, name)


def load_images(paths: list[str], model: ImageFlow, console: Console) -> list[LoadedImage]:
    """Load photos as the model's uint8 ``[C, H, W]``, saying what had to change for each."""
    loaded = [load_image(path, model.image_shape) for path in paths]
    shape = "x".join(map(str, model.image_shape))
    for path, image in zip(paths, loaded, strict=True):
        if image.changed:
            console.print(f"{path}: {image.description} to fit the model's {shape} (CxHxW) input")
    return loaded


def wrote(console: Console, path: Path, grid: torch.Tensor, what: str) -> None:
    """Report a written image grid ``[3, H, W]``: its path, what it shows and its size."""
    console.print(f"wrote {path} ({what}; {grid.shape[2]}x{grid.shape[1]} pixels)")
