"""Semantic manipulation measured: do held-out sneakers become ankle boots as α grows?

Protocol (issue 15, item 4): the direction is built with :func:`glowapp.generate.latent_direction`
from the *training* split (``--direction-images`` images of the target class against as many of
the source class); the first ``--images`` *test* images of the source class, which the direction
never saw, are moved by each ``α`` with :func:`glowapp.generate.manipulate`. An independent
classifier (:func:`glowapp.evaluation.load_feature_classifier`, trained on the training split;
its accuracy on the whole test split is measured here and reported) labels every result. Per
``α`` the table gives the share labelled as the target class and as the source class, and the
share of images left bit-for-bit unchanged (all of them at ``α = 0``).

    .venv/bin/python -m bench.manipulation --ckpt fashion-mnist --json docs/results/manipulation.json
    .venv/bin/python -m bench.manipulation --ckpt m.ckpt --images 16 --direction-images 64  # smoke run

The JSON names the checkpoint as the user gave it when that is a shipped model's name, else by
its path relative to the repository: never a machine's absolute path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from glowapp.data import FashionMNISTDataModule
from glowapp.evaluation.classifier import CLASS_NAMES, load_feature_classifier
from glowapp.evaluation.data import load_split, to_uint8
from glowapp.generate import latent_direction, load_module, manipulate
from glowapp.images import write_atomically
from glowapp.pretrained import SHIPPED

DEFAULT_ALPHAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.manipulation", description=__doc__)
    parser.add_argument(
        "--ckpt", required=True, help="a 1x28x28 Fashion-MNIST checkpoint (a path or shipped name)"
    )
    parser.add_argument("--data-root", default="data", help="data root (default: %(default)s)")
    parser.add_argument("--source", type=int, default=7, help="class moved from (7: sneaker)")
    parser.add_argument("--target", type=int, default=9, help="class moved to (9: ankle boot)")
    parser.add_argument("--images", type=int, default=200, help="held-out test images moved")
    parser.add_argument(
        "--direction-images", type=int, default=1000, help="training images per class"
    )
    parser.add_argument("--alpha", type=float, nargs="+", default=list(DEFAULT_ALPHAS))
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args(argv)


def checkpoint_label(ckpt: str | os.PathLike[str]) -> str:
    """How the results name ``--ckpt``: a shipped model's name as given, else the file's path
    relative to the repository (``../`` where it lies outside), so that no machine's absolute
    path is recorded."""
    if str(ckpt) in SHIPPED:
        return str(ckpt)
    return Path(os.path.relpath(Path(ckpt).resolve(), REPO)).as_posix()


@torch.no_grad()
def predict(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The classifier's class ``[N]`` of images ``[N, 1, 28, 28]`` (uint8 or ``[0, 1]``)."""
    return torch.cat([classifier(batch).argmax(dim=1) for batch in images.split(batch_size)])


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the protocol; the JSON document of the results."""
    module = load_module(args.ckpt)
    classifier = load_feature_classifier()
    data = FashionMNISTDataModule(root=args.data_root, val_fraction=0.0)
    data.prepare_data()
    data.setup("fit")
    data.setup("test")
    train_images, train_labels = load_split(data.train_dataset)
    test_images, test_labels = load_split(data.test_dataset)
    accuracy = (predict(classifier, test_images, 1000) == test_labels).float().mean().item()

    start = time.perf_counter()
    positive = train_images[train_labels == args.target][: args.direction_images]
    negative = train_images[train_labels == args.source][: args.direction_images]
    direction = latent_direction(module, positive, negative, args.batch_size)
    direction_seconds = time.perf_counter() - start
    held_out = test_images[test_labels == args.source][: args.images]
    real_targets = test_images[test_labels == args.target]
    target_reference = (predict(classifier, real_targets, 1000) == args.target).float().mean()

    start = time.perf_counter()
    batches = held_out.split(max(1, args.batch_size // len(args.alpha)))
    moved = torch.cat([manipulate(module, batch, direction, args.alpha) for batch in batches])
    manipulate_seconds = time.perf_counter() - start  # [N, A, 1, 28, 28] for N images, A alphas
    rows = []
    for alpha, column in zip(args.alpha, moved.unbind(dim=1), strict=True):
        labels = predict(classifier, column, 1000)
        unchanged = (to_uint8(column) == held_out).flatten(1).all(dim=1)
        rows.append(
            {
                "alpha": alpha,
                "target_share": (labels == args.target).float().mean().item(),
                "source_share": (labels == args.source).float().mean().item(),
                "unchanged_share": unchanged.float().mean().item(),
            }
        )
    return {
        "checkpoint": checkpoint_label(args.ckpt),
        "source": {"class": args.source, "name": CLASS_NAMES[args.source]},
        "target": {"class": args.target, "name": CLASS_NAMES[args.target]},
        "held_out_images": len(held_out),
        "direction_images_per_class": [len(positive), len(negative)],
        "direction_split": "train",
        "classifier": {
            "name": "glowapp.evaluation.FashionMNISTClassifier",
            "test_accuracy": accuracy,
            "real_target_test_images_as_target": target_reference.item(),
        },
        "rows": rows,
        "seconds": {"direction": direction_seconds, "manipulation": manipulate_seconds},
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads()},
    }


def table(result: dict[str, Any]) -> Table:
    """One row per α: the shares the classifier gives the target and the source class."""
    source, target = result["source"]["name"], result["target"]["name"]
    accuracy = result["classifier"]["test_accuracy"]
    reference = result["classifier"]["real_target_test_images_as_target"]
    out = Table(
        title=f"{result['held_out_images']} held-out test {source}s moved towards {target}",
        caption=f"classifier: {accuracy:.2%} test accuracy, {reference:.1%} on real {target}s",
    )
    for column in ("alpha", f"→ {target}", f"still {source}", "unchanged"):
        out.add_column(column, justify="right")
    for row in result["rows"]:
        out.add_row(
            f"{row['alpha']:g}",
            f"{row['target_share']:.1%}",
            f"{row['source_share']:.1%}",
            f"{row['unchanged_share']:.1%}",
        )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args)
    console = Console()
    console.print(table(result))
    if args.json is not None:
        document = json.dumps(result, indent=2) + "\n"
        console.print(f"wrote {write_atomically(args.json, document.encode())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
