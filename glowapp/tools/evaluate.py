"""``glowapp evaluate``: test bits/dim, and FID/KID, precision and recall of samples at several
temperatures beside the reference row of real training images and calibration rows of degraded
ones; for class-conditional models, class agreement beside the classifier's accuracy on real
test images and the model's own Bayes classifier. A table and optional JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import Tensor

from glowapp.atomic import write_atomically
from glowapp.data import DATA_SETS, load_named_split
from glowapp.data.datasets import seeded_permutation
from glowapp.evaluation.calibration import CALIBRATIONS
from glowapp.evaluation.classifier import CLASS_NAMES, load_feature_classifier
from glowapp.evaluation.extractors import FEATURES, default_features, feature_extractor
from glowapp.evaluation.manifold import DEFAULT_K
from glowapp.evaluation.metrics import Quality, check_set_size
from glowapp.evaluation.report import (
    BAYES_IMAGES,
    DEFAULT_TEMPERATURES,
    Evaluation,
    evaluate,
    with_default_temperature,
)
from glowapp.image_flow import ImageFlow
from glowapp.tools.common import Tool, load_model
from glowapp.tools.sampling_options import add_sampling_arguments, describe_sampling

CLASSIFIED_DATA = "fashion-mnist"
"""The one data set whose classifier ships (:mod:`glowapp.evaluation.classifier`): class
agreement is measured for class-conditional models of it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--num``, ``--temperature``, ``--guidance``, ``--denoise``, ``--features``, ``--json``,
    ``--batch-size``, ``--seed``, ``--data``, ``--data-root``, ``--test-limit``, ``--iw-samples``,
    ``--calibration``, ``--manifold-k``, ``--bayes-images``."""
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
        default=None,
        metavar="T",
        help="temperatures to sample at, one row each (default: "
        f"{' '.join(map(str, DEFAULT_TEMPERATURES))} and the model's own, marked as the default)",
    )
    add_sampling_arguments(parser)
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
        help="seed of the latent noise, the dequantisation noise, KID's subsets and the "
        "calibration rows' noise (default: %(default)s)",
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
    parser.add_argument(
        "--calibration",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also score the reference's training images degraded ("
        f"{', '.join(d.label for d in CALIBRATIONS)}): rows that show what a distance means in "
        "this feature space; no sampling, so cheap beside the sample rows (default: on)",
    )
    parser.add_argument(
        "--manifold-k",
        type=int,
        default=DEFAULT_K,
        metavar="K",
        help="neighbours of the k-NN manifolds of precision and recall (default: %(default)s)",
    )
    parser.add_argument(
        "--bayes-images",
        type=int,
        default=BAYES_IMAGES,
        metavar="N",
        help="class-conditional models: the model's own Bayes-classifier accuracy on the first N "
        "test images (up to one flow pass per class and image; 0 = off; default: %(default)s)",
    )


def _data(args: argparse.Namespace, model: ImageFlow) -> tuple[tuple[Tensor, Tensor], Tensor]:
    """The data set's official splits: the whole test split (or ``--test-limit``) as images and
    labels, and ``--num`` training images in a seeded random order."""
    image_shape = DATA_SETS[args.data].image_shape
    if image_shape != model.image_shape:
        shape, theirs = ("x".join(map(str, s)) for s in (image_shape, model.image_shape))
        raise ValueError(
            f"--data {args.data} holds {shape} images but the model makes {theirs} images; name "
            f"the data set it was trained on ({', '.join(DATA_SETS)})"
        )
    test = load_named_split(args.data, "test", args.data_root, args.test_limit, download=True)
    train_images, _ = load_named_split(args.data, "train", args.data_root, download=True)
    # seed 0: the order of the DataModules' default seed, as the reference row always used
    order = seeded_permutation(len(train_images), seed=0)[: args.num]
    return test, train_images[order]


def run(args: argparse.Namespace, console: Console) -> None:
    """Evaluate with a progress bar per stage; print the tables and write the JSON if asked."""
    source = load_model(args, console)
    model = source.model
    name = args.features or default_features(model.image_shape)
    extractor = feature_extractor(name, model.image_shape, model.device)
    check_set_size(args.num, "samples", extractor)  # before minutes of data loading
    if args.iw_samples < 0:
        raise ValueError(f"--iw-samples must be >= 0 (0 = off), got {args.iw_samples}")
    if args.bayes_images < 0:
        raise ValueError(f"--bayes-images must be >= 0 (0 = off), got {args.bayes_images}")
    settings = describe_sampling(model, args.guidance, args.denoise)  # checks both
    temperatures = args.temperature or with_default_temperature(
        DEFAULT_TEMPERATURES, model.sampling.temperature
    )
    classifier = None
    if model.num_classes:
        if args.data == CLASSIFIED_DATA and model.num_classes == len(CLASS_NAMES):
            classifier = load_feature_classifier(device=model.device)
        else:
            console.print(
                f"no class agreement: the one shipped classifier is {CLASSIFIED_DATA}'s "
                f"({len(CLASS_NAMES)} classes)"
            )
    test, train_images = _data(args, model)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        result = evaluate(
            model,
            extractor,
            test,
            train_images,
            temperatures,
            args.num,
            args.batch_size,
            args.seed,
            progress,
            args.iw_samples,
            guidance=args.guidance,
            denoise=args.denoise,
            classifier=classifier,
            calibration=CALIBRATIONS if args.calibration else (),
            k=args.manifold_k,
            bayes_images=args.bayes_images,
        )
    console.print(
        f"test {result.bits_label}: {result.test_bpd:.4f} over {result.test_images} test images "
        "(one dequantisation draw each: the bound `glowapp test` reports)"
    )
    if result.test_bpd_iw is not None:
        console.print(
            f"test bits/dim, importance-weighted over {result.iw_samples} draws per image: "
            f"{result.test_bpd_iw:.4f}"
        )
    console.print(_table(result, settings))
    if result.bayes_accuracy is not None or result.classifier_accuracy is not None:
        names = CLASS_NAMES if classifier is not None else None
        console.print(_class_table(result, names))
    if args.json is not None:
        document = json.dumps(result.as_json(source.label), indent=2) + "\n"
        console.print(f"wrote {write_atomically(args.json, document.encode())}")


def _table(result: Evaluation, settings: str) -> Table:
    """The reference row, the calibration rows, then one row per temperature (the model's
    default marked); the title names the feature space of every distance."""
    sampled = f"; samples: {settings}" if settings else ""
    degraded = "; blur/noise: the same images degraded" if result.calibration else ""
    table = Table(
        title=f"{result.num_samples} images per row against {result.test_images} test images, "
        f"in the {result.label}{sampled}",
        caption=f"reference: real training images, the floor no model can beat{degraded}; lower "
        "FID/KID = closer; precision: share of the row's images inside the test images' "
        f"{result.manifold_k}-NN manifold; recall: share of the test images inside the row's",
    )
    table.add_column("images", no_wrap=True)
    table.add_column("FID", justify="right", no_wrap=True)
    table.add_column("KID", justify="right", no_wrap=True)
    table.add_column("precision", justify="right", no_wrap=True)
    table.add_column("recall", justify="right", no_wrap=True)
    _add_row(table, "reference", result.reference)
    if result.calibration:
        table.add_section()
        for row in result.calibration:
            _add_row(table, row.degradation.label, row.quality)
    table.add_section()
    for sample in result.rows:
        _add_row(table, _temperature(sample.temperature, sample.default), sample.quality)
    return table


def _temperature(temperature: float, default: bool) -> str:
    """``"T = 0.7 (default)"`` for the model's default temperature, else ``"T = 0.5"``."""
    return f"T = {temperature:g}{' (default)' if default else ''}"


def _add_row(table: Table, what: str, quality: Quality) -> None:
    table.add_row(
        what,
        f"{quality.fid:.4g}",
        f"{quality.kid:.3g} ± {quality.kid_std:.2g}",
        f"{quality.precision:.3f}",
        f"{quality.recall:.3f}",
    )


def _class_table(result: Evaluation, names: tuple[str, ...] | None) -> Table:
    """Per class (rows) and overall: the classifier's accuracy on the test images, the model's
    Bayes classifier, and each temperature's class agreement."""
    columns, notes = [], []
    if result.classifier_accuracy is not None:
        columns.append(("classifier", result.classifier_accuracy))
        notes.append(
            f"classifier: the shipped classifier on the {result.test_images} test images (the "
            "ceiling of class agreement)"
        )
    if result.bayes_accuracy is not None:
        columns.append(("Bayes", result.bayes_accuracy))
        notes.append(
            f"Bayes: the model's own argmax_y log p(x | y) on {result.bayes_images} test images"
        )
    agreements = [sample for sample in result.rows if sample.class_agreement is not None]
    for sample in agreements:
        columns.append((_temperature(sample.temperature, sample.default), sample.class_agreement))
    if agreements:
        notes.append(
            "T: the samples drawn for each class, classified by the shipped classifier (class "
            "agreement)"
        )
    table = Table(title="share of images given their label", caption="; ".join(notes))
    table.add_column("class", no_wrap=True)
    for heading, _ in columns:
        table.add_column(heading, justify="right")
    for k in range(len(columns[0][1].per_class)):
        name = names[k] if names is not None else str(k)
        table.add_row(name, *(f"{accuracy.per_class[k]:.2f}" for _, accuracy in columns))
    table.add_section()
    table.add_row("overall", *(f"{accuracy.overall:.4f}" for _, accuracy in columns))
    return table


TOOL = Tool(
    "evaluate",
    "test bits/dim, and FID/KID, precision/recall and class agreement of samples against the "
    "test split, beside real and degraded real images (table, JSON)",
    add_arguments,
    run,
)
