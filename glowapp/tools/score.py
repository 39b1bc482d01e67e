"""``glowapp score``: bits/dim of image files under a model, as a table and optional JSON; with
``--score NAME``, also out-of-distribution scores (:mod:`glowapp.ood`) and a verdict per image.

The verdict: "outlier" when a score exceeds ``τ``, the threshold at 95 % TPR on in-distribution
reference images (95 % of them score ``≤ τ``), else "typical". The reference defaults to the
first :data:`REFERENCE_LIMIT` Fashion-MNIST test images for a model of 1×28×28 images; other
models need ``--reference``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from glowapp.atomic import write_atomically
from glowapp.generate import score
from glowapp.image_flow import ImageFlow
from glowapp.images import LoadedImage
from glowapp.ood import SCORES, TPR, Detector, parse_scores
from glowapp.tools.common import Tool, add_image_arguments, load_images, load_model
from glowapp.tools.ood import add_set_arguments, load_background, load_sets, reference_spec

DEFAULT_REFERENCE = "fashion-mnist:test"
"""The reference set of ``--score`` for models of Fashion-MNIST's 1×28×28 images."""

REFERENCE_LIMIT = 500
"""Reference images ``--score`` fits on by default (``--reference-limit``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The images, ``--noise-samples``, ``--seed``, ``--json``; ``--score`` and its reference."""
    add_image_arguments(parser, "+", "images to score")
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
    parser.add_argument(
        "--score",
        nargs="+",
        default=None,
        metavar="NAME",
        help="also judge each image with these out-of-distribution scores: "
        f"{', '.join(SCORES)}, or all; 'typical' or 'outlier' against the threshold at "
        f"{round(TPR * 100)}%% TPR on --reference",
    )
    add_set_arguments(
        parser,
        f"{DEFAULT_REFERENCE} for a model of 1x28x28 images (first --reference-limit of them)",
    )
    parser.add_argument(
        "--reference-limit",
        type=int,
        default=REFERENCE_LIMIT,
        metavar="N",
        help="fit on the first N reference images (default: %(default)s; 0: all)",
    )


def default_reference(image_shape: tuple[int, int, int]) -> str:
    """:data:`DEFAULT_REFERENCE` for 1×28×28 models; a ValueError for any other."""
    if tuple(image_shape) != (1, 28, 28):
        shape = "x".join(map(str, image_shape))
        raise ValueError(
            f"--score needs --reference SET for a model of {shape} images (in-distribution "
            "images it never trained on)"
        )
    return DEFAULT_REFERENCE


def judge(
    args: argparse.Namespace, model: ImageFlow, images: torch.Tensor, console: Console
) -> tuple[Detector, dict[str, torch.Tensor], str, int]:
    """Fit the ``--score`` scores on the reference; the detector, the images' scores, the
    reference's name and size."""
    names = parse_scores(args.score)
    if args.reference_limit < 0:
        raise ValueError(f"--reference-limit must be >= 0, got {args.reference_limit}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    background, names, _ = load_background(
        model, names, args.score, args.background, args.device, console
    )
    spec = reference_spec(args.reference or [default_reference(model.image_shape)])
    limit = args.reference_limit or None
    [reference] = load_sets([spec], model, limit, console)
    console.print(f"fitting the scores on {len(reference)} reference images ({reference.name})")
    detector = Detector(model, names, background, args.batch_size).fit_reference(reference.images)
    return detector, detector.score(images), reference.name, len(reference)


def run(args: argparse.Namespace, console: Console) -> None:
    """Score every image; print the table and write the JSON document if asked."""
    if args.score is not None:
        parse_scores(args.score)  # an unknown name fails before any work
    source = load_model(args, console)
    model = source.model
    loaded = load_images(args.images, model, console)
    images = torch.stack([image.image for image in loaded])
    bpd = score(model, images, args.noise_samples, args.seed).tolist()
    method = (
        "bin centres"
        if args.noise_samples == 0
        else f"mean of {args.noise_samples} dequantisations"
    )
    verdicts = None
    if args.score is not None:
        verdicts = judge(args, model, images, console)
    print_table(console, args.images, loaded, bpd, method, verdicts)
    if args.json is not None:
        records = [
            {"image": path, "bits_per_dim": value, "preprocessing": list(image.changes)}
            for path, image, value in zip(args.images, loaded, bpd, strict=True)
        ]
        document: dict[str, object] = {
            "checkpoint": str(source.path),
            "model": source.label,
            "method": method,
            "scores": records,
        }
        if verdicts is not None:
            detector, values, reference, size = verdicts
            for i, record in enumerate(records):
                record["ood"] = {
                    name: {
                        "score": float(values[name][i]),
                        "verdict": verdict(float(values[name][i]), detector.thresholds[name]),
                    }
                    for name in detector.names
                }
            document["ood"] = {
                "reference": reference,
                "reference_images": size,
                "tpr": TPR,
                "thresholds": detector.thresholds,
            }
        path = write_atomically(args.json, (json.dumps(document, indent=2) + "\n").encode())
        console.print(f"wrote {path}")


def verdict(value: float, threshold: float) -> str:
    """ "outlier" above the threshold, else "typical"."""
    return "outlier" if value > threshold else "typical"


def print_table(
    console: Console,
    paths: list[str],
    loaded: list[LoadedImage],
    bpd: list[float],
    method: str,
    verdicts: tuple[Detector, dict[str, torch.Tensor], str, int] | None,
) -> None:
    """The images' bits/dim and preprocessing, and each ``--score`` with its verdict."""
    table = Table(title=f"bits/dim ({method}; lower = more likely)")
    table.add_column("image", overflow="fold")
    table.add_column("bits/dim", justify="right")
    names = [] if verdicts is None else verdicts[0].names
    for name in names:
        table.add_column(name, justify="right", overflow="fold")
    table.add_column("preprocessing", overflow="fold")
    for i, (path, image, value) in enumerate(zip(paths, loaded, bpd, strict=True)):
        cells = []
        if verdicts is not None:
            detector, values = verdicts[0], verdicts[1]
            for name in names:
                v = float(values[name][i])
                cells.append(f"{v:.4f} {verdict(v, detector.thresholds[name])}")
        table.add_row(path, f"{value:.4f}", *cells, image.description)
    console.print(table)
    if verdicts is not None:
        detector, _, reference, size = verdicts
        thresholds = ", ".join(f"{n} {detector.thresholds[n]:.4f}" for n in names)
        console.print(
            f"outlier: a score above its threshold, at which {TPR:.0%} of the {size} reference "
            f"images ({reference}) are typical: {thresholds}",
            markup=False,
        )


TOOL = Tool(
    "score",
    "bits/dim of image files under a model, and out-of-distribution verdicts (--score)",
    add_arguments,
    run,
)
