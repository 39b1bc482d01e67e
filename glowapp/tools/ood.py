"""``glowapp ood``: how well each out-of-distribution score tells candidate image sets from
in-distribution reference images (AUROC, AUPR, FPR at 95 % TPR), with per-image CSV, JSON and
histograms.

Every score (:mod:`glowapp.ood`) is oriented so that higher means more out-of-distribution, and
fitted on the reference set only (cross-fitted on the reference's own images). The CSV has one
row per image, the reference set's included (its ``set`` is the reference's name), so every
AUROC of the JSON can be recomputed from it: AUROC(rows of the reference, rows of a set).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from glowapp.atomic import write_atomically
from glowapp.checkpointing import CheckpointError
from glowapp.data.offline import ImageSet, load_image_set
from glowapp.image_flow import ImageFlow
from glowapp.loading import load
from glowapp.ood import (
    BACKGROUND_MODEL,
    BEST,
    SCORES,
    TPR,
    Detector,
    aupr,
    auroc,
    check_background,
    check_matplotlib,
    fpr_at_tpr,
    parse_scores,
    plot_histograms,
    uses_background,
)
from glowapp.pretrained import display_path, resolve_checkpoint
from glowapp.tools.common import Tool, load_model


def add_set_arguments(parser: argparse.ArgumentParser, reference_default: str | None) -> None:
    """``--reference`` (required without a ``reference_default`` to describe), ``--background``,
    ``--batch-size``: what ``ood`` and ``score --score`` share."""
    parser.add_argument(
        "--reference",
        nargs="+",
        default=None,
        required=reference_default is None,
        metavar="SET",
        help="in-distribution images the model never trained on: a folder, a glob, image files, "
        "or a named set such as fashion-mnist:test"
        + ("" if reference_default is None else f" (default: {reference_default})"),
    )
    parser.add_argument(
        "--background",
        default=None,
        metavar="PATH|NAME",
        help=f"the background model of the ratio score (default: the shipped {BACKGROUND_MODEL})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=200,
        help="images per model pass (default: %(default)s)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sets, ``--score``, ``--background``, ``--limit``, the outputs."""
    add_set_arguments(parser, None)
    parser.add_argument(
        "--candidates",
        nargs="+",
        required=True,
        metavar="SET",
        help="the sets to tell from the reference, each a folder, a glob, image files (one set "
        "per run of files), or a named set: fashion-mnist:test[5000:]@vflip, mnist-5k, "
        "sklearn-digits, noise, constant",
    )
    parser.add_argument(
        "--score",
        nargs="+",
        default=["all"],
        metavar="NAME",
        help=f"scores: {', '.join(SCORES)}, or all (default: all; the best: {BEST})",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="score only the first N images of every set (default: all)",
    )
    parser.add_argument(
        "--batch-test",
        type=int,
        default=0,
        metavar="K",
        help="also the typicality test on batches of K images (Nalisnick et al. 2019b; 0: off)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="F",
        help="write the metrics: checkpoint, reference, scores and one row per set and score",
    )
    parser.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="F",
        help="write one row per image (set, image, then every score), the reference's included",
    )
    parser.add_argument(
        "--plot", type=Path, default=None, metavar="F.png", help="histograms of every score"
    )


def load_background(
    model: ImageFlow,
    names: list[str],
    asked: list[str],
    path: str | None,
    device: str,
    console: Console,
) -> tuple[ImageFlow | None, list[str], str | None]:
    """The background model of ``ratio`` and ``combined``, the scores left, and its name.

    ``path`` (``--background``), else the shipped :data:`BACKGROUND_MODEL`. Without
    ``--background`` and without ``ratio`` named in ``asked`` (it came from ``all``, or only
    ``combined`` uses it), a shipped model that is missing or takes another image shape is left
    out with one line: ``ratio`` is dropped and ``combined`` goes without its ``ratio`` part.

    Raises:
        CheckpointError: no such background model.
        ValueError: a background model for another image shape.
    """
    if not uses_background(names):
        return None, names, None
    optional = path is None and "ratio" not in asked
    try:
        file = resolve_checkpoint(BACKGROUND_MODEL if path is None else path)
        background = load(file, device)
        check_background(model, background)
    except (CheckpointError, ValueError) as err:
        if not optional:
            raise
        console.print(
            f"no background model ({err}): the ratio score is left out, and combined goes "
            "without it; pass --background",
            markup=False,
        )
        return None, [n for n in names if n != "ratio"], None
    return background, names, BACKGROUND_MODEL if path is None else display_path(file)


def group_sets(specs: list[str]) -> list[str | list[str]]:
    """The ``--candidates`` values as sets: each run of existing files is one set (a glob the
    shell expanded), every other value a set of its own."""
    sets: list[str | list[str]] = []
    run: list[str] = []
    for spec in specs:
        if Path(spec).is_file():
            run.append(spec)
            continue
        if run:
            sets.append(run)
            run = []
        sets.append(spec)
    if run:
        sets.append(run)
    return sets


def reference_spec(values: list[str]) -> str | list[str]:
    """The ``--reference`` values as one set (several values: image files only)."""
    if len(values) == 1:
        return values[0]
    if all(Path(value).is_file() for value in values):
        return values
    raise ValueError(
        f"--reference takes one set (a folder, glob, named set, or image files), got {len(values)}"
    )


def unique_names(sets: list[ImageSet], specs: list[str | list[str]]) -> list[ImageSet]:
    """The sets, renamed by their spec where two share a folder name.

    Raises:
        ValueError: the same set given twice.
    """
    names = [s.name for s in sets]
    renamed = []
    for image_set, spec in zip(sets, specs, strict=True):
        name = image_set.name
        if names.count(name) > 1:
            name = spec if isinstance(spec, str) else f"{spec[0]}…"
        renamed.append(ImageSet(name, image_set.images, image_set.ids, image_set.note))
    seen = [s.name for s in renamed]
    twice = next((n for n in seen if seen.count(n) > 1), None)
    if twice is not None:
        raise ValueError(f"the set {twice} is given twice")
    return renamed


def load_sets(
    specs: list[str | list[str]], model: ImageFlow, limit: int | None, console: Console
) -> list[ImageSet]:
    """Every set, saying what had to be converted to fit the model."""
    sets = []
    for spec in specs:
        image_set = load_image_set(spec, model.image_shape, limit)
        if image_set.note:
            console.print(f"{image_set.name}: {image_set.note}", markup=False)
        sets.append(image_set)
    return sets


def csv_text(sets: list[ImageSet], scores: list[dict[str, torch.Tensor]], names: list[str]) -> str:
    """One row per image: ``set``, ``image``, then every score (full precision: ``repr``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["set", "image", *names])
    for image_set, values in zip(sets, scores, strict=True):
        for i, image in enumerate(image_set.ids):
            writer.writerow([image_set.name, image, *(repr(float(values[n][i])) for n in names)])
    return buffer.getvalue()


def run(args: argparse.Namespace, console: Console) -> None:
    """Fit the scores on the reference, score every candidate set, report and write."""
    names = parse_scores(args.score)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    if args.batch_test < 0:
        raise ValueError(f"--batch-test must be >= 0, got {args.batch_test}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.plot is not None:
        check_matplotlib()
    source = load_model(args, console)
    model = source.model
    background, names, background_label = load_background(
        model, names, args.score, args.background, args.device, console
    )
    candidate_specs = group_sets(args.candidates)
    specs: list[str | list[str]] = [reference_spec(args.reference), *candidate_specs]
    sets = unique_names(load_sets(specs, model, args.limit, console), specs)
    reference, candidates = sets[0], sets[1:]
    detector = Detector(model, names, background, args.batch_size)
    console.print(f"scoring {len(reference)} reference images ({reference.name})", markup=False)
    detector.fit_reference(reference.images)
    all_scores = [detector.reference_scores]
    rows, batch_rows = [], []
    for candidate in candidates:
        console.print(f"scoring {len(candidate)} images ({candidate.name})", markup=False)
        measured = detector.measure(candidate.images)
        scores = detector.score_measured(measured)
        all_scores.append(scores)
        mean_bpd = float(measured.bpd.mean())
        for name in names:
            ref_scores = detector.reference_scores[name]
            rows.append(
                {
                    "set": candidate.name,
                    "score": name,
                    "auroc": auroc(ref_scores, scores[name]),
                    "aupr": aupr(ref_scores, scores[name]),
                    "fpr95": fpr_at_tpr(ref_scores, scores[name]),
                    "mean_bpd": mean_bpd,
                }
            )
        if args.batch_test:
            batch_rows.append(
                {
                    "set": candidate.name,
                    "k": args.batch_test,
                    "auroc": detector.batch_typicality(measured, args.batch_test),
                }
            )
    reference_bpd = float(detector.reference.bpd.mean()) if detector.reference else float("nan")
    print_table(console, rows, reference, reference_bpd, model.bits_label)
    for row in batch_rows:
        console.print(
            f"typicality test on batches of {row['k']}: {row['set']} AUROC {row['auroc']:.3f}",
            markup=False,
        )
    if args.csv is not None:
        written = write_atomically(args.csv, csv_text(sets, all_scores, names).encode())
        console.print(f"wrote {written} (one row per image, the reference's included)")
    if args.plot is not None:
        named = [(s.name, scores) for s, scores in zip(sets, all_scores, strict=True)]
        written = write_atomically(args.plot, plot_histograms(named, names, detector.thresholds))
        console.print(f"wrote {written} (a histogram of every score per set)")
    if args.json is not None:
        document = {
            "checkpoint": source.label,
            "reference": reference.name,
            "scores": names,
            "rows": rows,
            "background": background_label,
            "reference_images": len(reference),
            "reference_mean_bpd": reference_bpd,
            "tpr": TPR,
            "thresholds": detector.thresholds,
            "batch_test": batch_rows,
        }
        written = write_atomically(args.json, (json.dumps(document, indent=2) + "\n").encode())
        console.print(f"wrote {written}")


def print_table(
    console: Console, rows: list[dict[str, object]], reference: ImageSet, bpd: float, bits: str
) -> None:
    """The metrics of every candidate set and score."""
    table = Table(
        title=f"telling each set from {reference.name} ({len(reference)} images, mean {bits} "
        f"{bpd:.3f}); every score: higher = more out-of-distribution"
    )
    for column in ("set", "score", "AUROC", "AUPR", "FPR95", f"mean {bits}"):
        if column in ("set", "score"):
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["set"]),
            str(row["score"]),
            f"{row['auroc']:.3f}",
            f"{row['aupr']:.3f}",
            f"{row['fpr95']:.3f}",
            f"{row['mean_bpd']:.3f}",
        )
    console.print(table)


TOOL = Tool(
    "ood",
    "out-of-distribution scores of image sets against reference images (AUROC, AUPR, FPR95)",
    add_arguments,
    run,
)
