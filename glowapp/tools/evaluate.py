"""``glowapp evaluate``: test bits/dim, and FID/KID of samples at several temperatures beside the
reference row of real training images, as a table and optional JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from glowapp.data import (
    CIFAR10DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    SVHNDataModule,
    TorchvisionDataModule,
)
from glowapp.evaluation.data import load_split
from glowapp.evaluation.extractors import FEATURES, default_features, feature_extractor
from glowapp.evaluation.metrics import check_set_size
from glowapp.evaluation.report import DEFAULT_TEMPERATURES, Evaluation, evaluate
from glowapp.images import write_atomically
from glowapp.module import GlowModule
from glowapp.tools.common import Tool, load_model

DATA_SETS: dict[str, type[TorchvisionDataModule]] = {
    "fashion-mnist": FashionMNISTDataModule,
    "mnist": MNISTDataModule,
    "cifar10": CIFAR10DataModule,
    "svhn": SVHNDataModule,
}
"""The data sets whose official test split ``--data`` names."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--num``, ``--temperature``, ``--features``, ``--json``, ``--batch-size``, ``--seed``,
    ``--data``, ``--data-root``, ``--test-limit``, ``--iw-samples``."""
    parser.add_argument(
        "--num",
        type=int,
        default=10_000,
        help="samples per temperature, and training images in the reference row (default: "
        "%(default)s)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        default=list(DEFAULT_TEMPERATURES),
        metavar="T",
        help="temperatures to sample at, one row each (default: 0.5 0.7 0.8 1.0)",
    )
    parser.add_argument(
        "--features",
        choices=FEATURES,
        default=None,
        help="feature space of FID/KID: fashion-mnist (the shipped classifier, offline) or "
        "inception (InceptionV3, comparable with papers; needs torch-fidelity and its weights); "
        "default: fashion-mnist for 1x28x28 models, else inception",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the results here"
    )
    parser.add_argument(
        "--batch-size", type=int, default=500, help="images per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the latent noise, the dequantisation noise and KID's subsets (default: "
        "%(default)s)",
    )
    parser.add_argument(
        "--data",
        choices=tuple(DATA_SETS),
        default="fashion-mnist",
        help="the data set the model was trained on (default: %(default)s)",
    )
    parser.add_argument(
        "--data-root", default="data", help="data root, as in the configs (default: %(default)s)"
    )
    parser.add_argument(
        "--test-limit",
        type=int,
        default=None,
        metavar="N",
        help="use only the first N test images (default: all)",
    )
    parser.add_argument(
        "--iw-samples",
        type=int,
        default=0,
        metavar="K",
        help="also report the importance-weighted test bits/dim over K dequantisation draws per "
        "image, a tighter estimate (K times the test pass; default: 0 = off)",
    )


def _data(args: argparse.Namespace, module: GlowModule) -> TorchvisionDataModule:
    """The data set's official splits: the whole test split (or ``--test-limit``), and
    ``--num`` training images in a seeded random order."""
    data = DATA_SETS[args.data](
        root=args.data_root, val_fraction=0.0, train_limit=args.num, test_limit=args.test_limit
    )
    if data.image_shape != module.image_shape:
        shape, model = ("x".join(map(str, s)) for s in (data.image_shape, module.image_shape))
        raise ValueError(
            f"--data {args.data} holds {shape} images but the model makes {model} images; name "
            f"the data set it was trained on ({', '.join(DATA_SETS)})"
        )
    data.prepare_data()
    data.setup("fit")
    data.setup("test")
    return data


def run(args: argparse.Namespace, console: Console) -> None:
    """Evaluate with a progress bar per stage; print the table and write the JSON if asked."""
    module = load_model(args)
    name = args.features or default_features(module.image_shape)
    extractor = feature_extractor(name, module.image_shape, module.device)
    check_set_size(args.num, "samples", extractor)  # before minutes of data loading
    if args.iw_samples < 0:
        raise ValueError(f"--iw-samples must be >= 0 (0 = off), got {args.iw_samples}")
    data = _data(args, module)
    test = load_split(data.test_dataset)
    train_images, _ = load_split(data.train_dataset)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        result = evaluate(
            module,
            extractor,
            test,
            train_images,
            args.temperature,
            args.num,
            args.batch_size,
            args.seed,
            progress,
            args.iw_samples,
        )
    console.print(
        f"test bits/dim: {result.test_bpd:.4f} over {result.test_images} test images (one "
        "dequantisation draw each: the bound `glowapp test` reports)"
    )
    if result.test_bpd_iw is not None:
        console.print(
            f"test bits/dim, importance-weighted over {result.iw_samples} draws per image: "
            f"{result.test_bpd_iw:.4f}"
        )
    console.print(_table(result))
    if args.json is not None:
        document = json.dumps(result.as_json(str(args.ckpt)), indent=2) + "\n"
        console.print(f"wrote {write_atomically(args.json, document.encode())}")


def _table(result: Evaluation) -> Table:
    """The reference row, then one row per temperature; every distance labelled by its features."""
    table = Table(
        title=f"{result.num_samples} images per row against {result.test_images} test images",
        caption="reference: real training images, the floor no model can beat; lower = closer",
    )
    table.add_column("images")
    table.add_column(f"FID ({result.label})", justify="right", no_wrap=True)
    table.add_column(f"KID ({result.label})", justify="right", no_wrap=True)
    rows = [("reference", result.reference)]
    rows += [(f"T = {t:g}", quality) for t, quality in result.rows]
    for what, quality in rows:
        table.add_row(what, f"{quality.fid:.4g}", f"{quality.kid:.4g} ± {quality.kid_std:.2g}")
    return table


TOOL = Tool(
    "evaluate",
    "test bits/dim, and FID/KID of samples against the test split (table, JSON)",
    add_arguments,
    run,
)
