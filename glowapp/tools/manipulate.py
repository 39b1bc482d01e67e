"""``glowapp manipulate``: move images along the latent direction between two sets of images
(Glow's semantic manipulation); a PNG grid with one row per image and one column per α."""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import torch
from PIL import Image
from rich.console import Console
from torch import Tensor

from glowapp.data import DATA_SETS, load_named_split
from glowapp.generate import Direction, class_direction, latent_direction, manipulate
from glowapp.image_flow import ImageFlow
from glowapp.images import display_scale, load_image, save_png, tile
from glowapp.tools.common import Tool, add_image_arguments, load_images, load_model
from glowapp.tools.directions import load_direction, save_direction
from glowapp.tools.figures import add_scale_argument, write_figure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The images, the direction's source, ``--alpha``, ``--out``, ``--out-dir``."""
    add_image_arguments(parser, "+", "image(s) to manipulate")
    sets = "image files, folders or globs"
    parser.add_argument(
        "--positive",
        nargs="+",
        default=[],
        metavar="PATH",
        help=f"the set to move towards ({sets})",
    )
    parser.add_argument(
        "--negative", nargs="+", default=[], metavar="PATH", help=f"the set to move from ({sets})"
    )
    parser.add_argument(
        "--positive-class",
        type=int,
        default=None,
        metavar="K",
        help="instead of --positive: the test images of class K of --data (e.g. 9, ankle boot)",
    )
    parser.add_argument(
        "--negative-class",
        type=int,
        default=None,
        metavar="J",
        help="instead of --negative: the test images of class J of --data (e.g. 7, sneaker)",
    )
    parser.add_argument(
        "--data",
        default="fashion-mnist",
        metavar="NAME|DIR",
        help=f"the labelled data set of the class options: {', '.join(DATA_SETS)}, or an image "
        "folder (default: %(default)s)",
    )
    parser.add_argument(
        "--data-root", default="data", help="data root, as in the configs (default: %(default)s)"
    )
    parser.add_argument(
        "--direction",
        type=Path,
        default=None,
        metavar="D.pt",
        help="reuse a direction saved by --save-direction (instead of the sets)",
    )
    parser.add_argument(
        "--save-direction", type=Path, default=None, metavar="D.pt", help="save the direction"
    )
    parser.add_argument(
        "--alpha",
        type=float,
        nargs="+",
        default=[0.0, 0.5, 1.0, 1.5, 2.0],
        metavar="A",
        help="steps along the direction, one column each; 0 is the input (default: 0 0.5 1 1.5 2)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("manipulate.png"), help="output PNG (default: %(default)s)"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write each result at the model's resolution as DIR/<image stem>_a<alpha>.png",
    )
    parser.add_argument(
        "--batch-size", type=int, default=256, help="images encoded at once (default: %(default)s)"
    )
    add_scale_argument(parser)


def expand_paths(patterns: list[str]) -> list[Path]:
    """Image files from files, folders (their image files, sorted) and globs (sorted matches).

    A name that is neither a folder nor a pattern is kept as it is, so that a missing file gets
    :func:`~glowapp.images.open_image`'s "no such file" line.
    """
    suffixes = set(Image.registered_extensions())
    paths: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            paths += sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes
            )
        elif glob.has_magic(pattern):
            paths += sorted(
                Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()
            )
        else:
            paths.append(path)
    return paths


def _image_set(paths: list[Path], model: ImageFlow, console: Console, what: str) -> Tensor:
    """The files as the model's uint8 ``[N, C, H, W]`` (``[0, C, H, W]`` for none), with one line
    saying how many and how many had to be fitted to the model."""
    loaded = [load_image(path, model.image_shape) for path in paths]
    fitted = sum(image.changed for image in loaded)
    console.print(f"{what}: {len(loaded)} images ({fitted} converted or resized to fit the model)")
    if not loaded:
        return torch.empty(0, *model.image_shape, dtype=torch.uint8)
    return torch.stack([image.image for image in loaded])


def _labelled_set(args: argparse.Namespace, model: ImageFlow) -> tuple[Tensor, Tensor | None]:
    """The test split of ``--data`` (images, labels), or an image folder's images (no labels)."""
    if args.data not in DATA_SETS:
        folder = Path(args.data)
        if not folder.is_dir():
            raise ValueError(f"--data must be one of {', '.join(DATA_SETS)} or a folder: {folder}")
        images = [load_image(path, model.image_shape).image for path in expand_paths([args.data])]
        return torch.stack(images) if images else torch.empty(0, *model.image_shape), None
    image_shape = DATA_SETS[args.data].image_shape
    if image_shape != model.image_shape:
        shape, theirs = ("x".join(map(str, s)) for s in (image_shape, model.image_shape))
        raise ValueError(f"--data {args.data} holds {shape} images but the model takes {theirs}")
    return load_named_split(args.data, "test", args.data_root, download=True)


def _direction(args: argparse.Namespace, model: ImageFlow, console: Console) -> Direction:
    """The direction from exactly one source: ``--direction``, the classes, or the two sets."""
    classes = args.positive_class is not None or args.negative_class is not None
    sources = [args.direction is not None, classes, bool(args.positive or args.negative)]
    if sum(sources) != 1:
        raise ValueError(
            "give the direction one way: --positive and --negative images, --positive-class and "
            "--negative-class, or --direction D.pt"
        )
    if args.direction is not None:
        return load_direction(args.direction, model)
    if classes:
        if args.positive_class is None or args.negative_class is None:
            raise ValueError("give both --positive-class and --negative-class")
        images, labels = _labelled_set(args, model)
        return class_direction(
            model, images, labels, args.positive_class, args.negative_class, args.batch_size
        )
    positive, negative = (
        _image_set(expand_paths(patterns), model, console, what)
        for patterns, what in ((args.positive, "positive"), (args.negative, "negative"))
    )
    return latent_direction(model, positive, negative, args.batch_size)


def result_name(stem: str, alpha: float) -> str:
    """``<stem>_a<α>.png`` with α in its shortest form: 1.5 → ``1.5``, 2 → ``2``, -1 → ``-1``."""
    return f"{stem}_a{alpha:g}.png"


def _write_results(out_dir: Path, paths: list[str], alphas: list[float], results: Tensor) -> None:
    """Each result ``results[i, j]`` ``[C, H, W]`` as its own PNG in ``out_dir``."""
    names = [result_name(Path(path).stem, alpha) for path in paths for alpha in alphas]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"--out-dir would write {repeated[0]} twice: give images different names and each "
            "alpha once"
        )
    for name, image in zip(names, results.flatten(0, 1), strict=True):
        save_png(image, out_dir / name)


def run(args: argparse.Namespace, console: Console) -> None:
    """Load the model, the images and the direction; manipulate; write the grid (and files)."""
    source = load_model(args, console)
    model = source.model
    scale = display_scale(model.image_shape[1:], args.scale)
    images = torch.stack([image.image for image in load_images(args.images, model, console)])
    direction = _direction(args, model, console)
    if args.save_direction is not None:
        console.print(f"wrote {save_direction(direction, args.save_direction)} (the direction)")
    results = manipulate(model, images, direction, args.alpha)
    if args.out_dir is not None:
        _write_results(args.out_dir, args.images, args.alpha, results)
        console.print(f"wrote {results.shape[0] * results.shape[1]} images to {args.out_dir}")
    grid = tile(results, len(args.alpha))
    alphas = " ".join(f"{a:g}" for a in args.alpha)
    write_figure(console, grid, scale, args.out, f"{len(images)} rows, alpha = {alphas}")


TOOL = Tool(
    "manipulate",
    "move images along the latent direction between two sets of images (PNG grid)",
    add_arguments,
    run,
)
