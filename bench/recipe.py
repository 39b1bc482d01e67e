#!/usr/bin/env python
"""Sample-quality recipe benchmark: each ingredient's effect at an equal CPU budget.

Every ingredient is one training run of the :mod:`bench.quality` protocol (``--clock cpu
--threads 1``: budgets count the process's CPU seconds, so runs sharing a machine still
compare; EMA of the weights, as the shipped configs use):

* ``glow``: the previous shipped Glow (``configs/glow_fashion_mnist_unconditional.yaml``: 2 levels
  × 16 steps, width 96, spline couplings, LU 1×1 convolutions), uniform dequantisation;
* ``glow-cond``: the label reaches every coupling network and prior (a 32-d label embedding),
  label dropout 0.1 — one network that is conditional and unconditional, so samples can use
  classifier-free guidance;
* ``glow-cond-noise``: the same trained on noisy images (Gaussian σ = 0.05 on [0, 1]), sampled
  with and without the Tweedie denoising step;
* ``glow-cond-attention``: self-attention in every coupling network (Flow++);
* ``tarflow-cond``: a TarFlow-style transformer autoregressive flow on 4×4 patches
  (``configs/tarflow_fashion_mnist.yaml``), conditioned the same way.

Each budget's checkpoint is then sampled under several settings (a *row*: the unconditional
branch, conditional sampling with guidance weight W, denoised or not, at a temperature) and
measured against the Fashion-MNIST test images in the shipped classifier's feature space: FID,
KID, precision and recall (k = 3), class agreement for conditional rows (the share of samples
drawn for class k that the classifier assigns to k), the time to sample 1,000 images with that
row's settings, and the test bits/dim of the model's own kind (noisy-image bits/dim for the
noise-augmented model; the conditional ones' bits/dim are of p(x | y)). ``--extra NAME=CKPT``
adds checkpoints trained elsewhere (e.g. the shipped models, or a long run's checkpoints for
the "longer training" rows).

    .venv/bin/python -m bench.recipe --minutes 30 120 --num 5000 --out docs/results/recipe.json
    .venv/bin/python -m bench.recipe --only glow-cond --minutes 30 --extra shipped=fashion-mnist

Training runs already done are reused: ``WORKDIR/<ingredient>.json`` (bench.quality's report)
and its budget checkpoints. ``--quick`` is a seconds-long smoke run of the whole pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

import glowapp
from bench.timing import cpu_flags, cpu_model, load_average, log
from glowapp.atomic import write_atomically
from glowapp.data import load_named_split
from glowapp.evaluation.classifier import load_feature_classifier
from glowapp.evaluation.extractors import feature_extractor
from glowapp.evaluation.metrics import SampleQuality
from glowapp.evaluation.report import mean_bits_per_dim, sample_row
from glowapp.generate import draw_noise
from glowapp.image_flow import ImageFlow

REPO = Path(__file__).resolve().parents[1]
BASELINE_CONFIG = REPO / "configs" / "glow_fashion_mnist_unconditional.yaml"
TARFLOW_CONFIG = REPO / "configs" / "tarflow_fashion_mnist.yaml"
CONDITIONAL = [
    "--model.flow.init_args.num_classes", "10",
    "--model.flow.init_args.label_embedding_dim", "32",
    "--model.label_dropout", "0.1",
]  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One way of sampling a trained model."""

    name: str
    temperature: float
    unconditional: bool = False
    guidance: float = 0.0
    denoise: bool | None = None


UNCONDITIONAL_ROWS = (Row("T=1", 1.0), Row("T=0.8", 0.8))
CONDITIONAL_ROWS = (
    Row("unconditional branch, T=1", 1.0, unconditional=True),
    Row("W=0, T=1", 1.0),
    Row("W=1, T=1", 1.0, guidance=1.0),
    Row("W=2, T=1", 1.0, guidance=2.0),
    Row("W=2, T=0.8", 0.8, guidance=2.0),
)
NOISY_ROWS = (
    Row("unconditional branch, T=1, not denoised", 1.0, unconditional=True, denoise=False),
    Row("unconditional branch, T=1, denoised", 1.0, unconditional=True, denoise=True),
    Row("W=2, T=1, not denoised", 1.0, guidance=2.0, denoise=False),
    Row("W=2, T=1, denoised", 1.0, guidance=2.0, denoise=True),
)


@dataclass(frozen=True)
class Ingredient:
    """A training run (config + overrides) and the rows each of its checkpoints is sampled with."""

    name: str
    what: str
    config: Path
    overrides: tuple[str, ...]
    rows: tuple[Row, ...]


INGREDIENTS = (
    Ingredient(
        "glow", "today's Glow, uniform dequantisation", BASELINE_CONFIG, (), UNCONDITIONAL_ROWS
    ),
    Ingredient(
        "glow-cond",
        "+ the label in every layer, label dropout (guidance)",
        BASELINE_CONFIG,
        tuple(CONDITIONAL),
        CONDITIONAL_ROWS,
    ),
    Ingredient(
        "glow-cond-noise",
        "+ Gaussian noise σ = 0.05 in training, Tweedie denoising",
        BASELINE_CONFIG,
        (
            *CONDITIONAL,
            "--model.dequantization.kind",
            "gaussian",
            "--model.dequantization.sigma",
            "0.05",
        ),
        NOISY_ROWS,
    ),
    Ingredient(
        "glow-cond-attention",
        "+ self-attention in every coupling network (Flow++)",
        BASELINE_CONFIG,
        (*CONDITIONAL, "--model.flow.init_args.attention_heads", "4"),
        CONDITIONAL_ROWS,
    ),
    Ingredient(
        "tarflow-cond",
        "TarFlow (transformer autoregressive flow on 4×4 patches), conditional",
        TARFLOW_CONFIG,
        (*CONDITIONAL, "--data.init_args.batch_size", "32"),
        CONDITIONAL_ROWS,
    ),
)


def train(ingredient: Ingredient, args: argparse.Namespace) -> dict[str, Any]:
    """``bench.quality``'s report for ``ingredient`` (run now unless its JSON exists), run in
    ``args.workdir`` so that nothing is written into the working tree."""
    report = args.workdir / f"{ingredient.name}.json"
    if not report.exists():
        command = [
            sys.executable, "-m", "bench.quality", "--config", str(ingredient.config),
            "--threads", "1", "--clock", "cpu", "--ema", "0.999",
            "--out", str(report), "--workdir", str(args.workdir / ingredient.name),
            *(["--quick", "--seconds", "2"] if args.quick else ["--minutes", *map(str, args.minutes)]),
            *ingredient.overrides,
            *([] if args.data_root is None else ["--data.init_args.root", str(args.data_root)]),
        ]  # fmt: skip
        log(f"training {ingredient.name}: {' '.join(command)}")
        args.workdir.mkdir(parents=True, exist_ok=True)
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        subprocess.run(command, check=True, cwd=args.workdir, env=environment)
    return json.loads(report.read_text())


class NullBranch(ImageFlow):
    """A class-conditional flow's "no label" branch p(x | ∅) sampled as it is (an unconditional
    :class:`ImageFlow` would instead decode sample ``i`` from class ``i mod K``)."""

    def generate(
        self,
        latents: Sequence[torch.Tensor],
        labels: torch.Tensor | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> torch.Tensor:
        return self.decode(latents, labels, 0.0, denoise)


def view(model: ImageFlow, row: Row) -> ImageFlow:
    """``model`` as ``row`` samples it: its "no label" branch if asked, with the row's defaults."""
    sampling = replace(model.sampling, temperature=row.temperature)
    if row.unconditional:
        return NullBranch(
            model.flow, model.preprocessing, model.dequantization, sampling, unconditional=True
        ).eval()
    model.sampling = sampling
    return model


def sampling_seconds(model: ImageFlow, row: Row, num: int = 1000, batch: int = 250) -> float:
    """Wall seconds to draw ``num`` samples with ``row``'s settings (after a small warm-up)."""
    options = {"guidance": row.guidance if model.can_guide else None, "denoise": row.denoise}
    model.sample(4, **options)
    start = time.perf_counter()
    for begin in range(0, num, batch):
        model.sample(min(batch, num - begin), **options)
    return time.perf_counter() - start


def measure(
    checkpoint: str,
    rows: Sequence[Row],
    quality: SampleQuality,
    test: tuple,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Every row's metrics for one checkpoint."""
    model = glowapp.load(checkpoint)
    classifier = load_feature_classifier()
    noise = draw_noise(model, args.num, args.seed)
    images, labels = test
    bpd_images = images[: args.bpd_images], labels[: args.bpd_images]
    results = []
    for row in rows:
        if row.guidance and not model.can_guide:
            continue
        sampler = view(model, row)
        guidance = row.guidance if sampler.can_guide else None
        started = time.perf_counter()
        measured = sample_row(
            sampler, quality, noise, row.temperature, args.batch_size, guidance, row.denoise,
            classifier,
        )  # fmt: skip
        bpd = mean_bits_per_dim(sampler, *bpd_images, args.batch_size, args.seed)
        results.append(
            {
                "row": row.name,
                "temperature": row.temperature,
                "unconditional": row.unconditional or not model.num_classes,
                "guidance": row.guidance,
                "denoise": sampler.sampling_options(None, guidance, row.denoise).denoise,
                **measured.quality.as_dict(),
                "class_agreement": None
                if measured.class_agreement is None
                else measured.class_agreement.as_dict(),
                "bpd": bpd,
                "bits_label": sampler.bits_label + (" of p(x | ∅)" if row.unconditional else ""),
                "sample_1000_s": sampling_seconds(sampler, row, 1000 if not args.quick else 8),
                "measure_s": time.perf_counter() - started,
            }
        )
        log(f"  {row.name}: FID {results[-1]['fid']:.1f}")
    return results


def print_table(report: dict[str, Any]) -> None:
    table = Table(
        title=f"{report['num_samples']} samples per row against the test images ({report['features']})"
    )
    for name in (
        "ingredient",
        "budget",
        "sampling",
        "bpd",
        "FID",
        "precision",
        "recall",
        "class agr.",
        "1000 samples",
    ):
        table.add_column(name, justify="left" if name in ("ingredient", "sampling") else "right")
    for entry in report["results"]:
        for row in entry["rows"]:
            agreement = row["class_agreement"]
            table.add_row(
                entry["ingredient"],
                entry["budget"],
                row["row"],
                f"{row['bpd']:.3f}",
                f"{row['fid']:.1f}",
                f"{row['precision']:.2f}",
                f"{row['recall']:.2f}",
                "-" if agreement is None else f"{agreement['overall']:.2f}",
                f"{row['sample_1000_s']:.1f} s",
            )
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=float, nargs="+", default=[30.0, 120.0], help="CPU budgets"
    )
    parser.add_argument("--only", nargs="+", default=None, help="ingredients to run (default: all)")
    parser.add_argument(
        "--extra", nargs="+", default=[], metavar="NAME=CKPT", help="more checkpoints"
    )
    parser.add_argument("--num", type=int, default=5000, help="samples per row (default: 5000)")
    parser.add_argument("--bpd-images", type=int, default=2000, help="test images for bits/dim")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="threads while measuring")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=REPO / "bench" / "results" / "recipe",
        help="training runs and their reports (reused when present)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "recipe.json")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="the data sets' folder (default: the config's)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: seconds, few samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.num, args.bpd_images = 200, 64
    torch.set_num_threads(args.threads)
    chosen = [i for i in INGREDIENTS if args.only is None or i.name in args.only]
    test = load_named_split("fashion-mnist", "test", limit=args.num if args.quick else None)
    extractor = feature_extractor("fashion-mnist", (1, 28, 28))
    quality = SampleQuality(extractor, test[0], args.num, args.batch_size, args.seed)
    results: list[dict[str, Any]] = []

    def write(complete: bool) -> dict[str, Any]:
        """The report so far, written after every checkpoint (a long run keeps what it measured)."""
        report = {
            "num_samples": args.num,
            "features": extractor.label,
            "bpd_images": args.bpd_images,
            "cpu_model": cpu_model(),
            "cpu_flags": cpu_flags(),
            "threads": args.threads,
            "load_average_after": load_average(),
            "complete": complete,
            "notes": "bpd: of the model's own kind (bits_label), on the first bpd_images test "
            "images, one dequantisation draw; test_bpd_all: bench.quality's bound on all 10,000 "
            "(p(x | y) for conditional models). sample_1000_s: wall seconds at `threads`, shared "
            "machine. class_agreement: the shipped classifier's agreement with the requested class.",
            "results": results,
        }
        write_atomically(args.out, (json.dumps(report, indent=2) + "\n").encode())
        return report

    for ingredient in chosen:
        trained = train(ingredient, args)
        for budget in trained["budgets"]:
            label = f"{budget['budget_s'] / 60:g} CPU-min"
            log(f"{ingredient.name}, {label}")
            rows = measure(budget["checkpoint"], ingredient.rows, quality, test, args)
            results.append(
                {
                    "ingredient": ingredient.name,
                    "what": ingredient.what,
                    "budget": label,
                    "steps": budget["steps"],
                    "train_images_per_s": budget["images_per_s"],
                    "test_bpd_all": budget["test_bpd"],
                    "rows": rows,
                }
            )
            write(complete=False)
    for extra in args.extra:
        name, _, checkpoint = extra.partition("=")
        model = glowapp.load(checkpoint)
        rows = CONDITIONAL_ROWS if model.can_guide else UNCONDITIONAL_ROWS
        log(f"{name} ({checkpoint})")
        results.append(
            {
                "ingredient": name,
                "what": checkpoint,
                "budget": "-",
                "rows": measure(checkpoint, rows, quality, test, args),
            }
        )
        write(complete=False)
    report = write(complete=True)
    print_table(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
