"""``glowapp score``: bits/dim of image files under a model, as a table and optional JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from glowapp.generate import score
from glowapp.images import write_atomically
from glowapp.tools.common import Tool, add_image_arguments, load_images, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The images, ``--noise-samples``, ``--seed``, ``--json``."""
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


def run(args: argparse.Namespace, console: Console) -> None:
    """Score every image; print the table and write the JSON document if asked."""
    module = load_model(args)
    loaded = load_images(args.images, module, console)
    images = torch.stack([image.image for image in loaded])
    bpd = score(module, images, args.noise_samples, args.seed).tolist()
    method = (
        "bin centres"
        if args.noise_samples == 0
        else f"mean of {args.noise_samples} dequantisations"
    )
    table = Table(title=f"bits/dim ({method}; lower = more likely)")
    table.add_column("image", overflow="fold")
    table.add_column("bits/dim", justify="right")
    table.add_column("preprocessing", overflow="fold")
    for path, image, value in zip(args.images, loaded, bpd, strict=True):
        table.add_row(path, f"{value:.4f}", image.description)
    console.print(table)
    if args.json is not None:
        records = [
            {"image": path, "bits_per_dim": value, "preprocessing": list(image.changes)}
            for path, image, value in zip(args.images, loaded, bpd, strict=True)
        ]
        document = {"checkpoint": str(args.ckpt), "method": method, "scores": records}
        path = write_atomically(args.json, (json.dumps(document, indent=2) + "\n").encode())
        console.print(f"wrote {path}")


TOOL = Tool(
    "score", "bits/dim of image files under a model (table, optional JSON)", add_arguments, run
)
