#!/usr/bin/env python
"""Is an i-ResNet block practical as a step of the image model on a CPU? Costs measured side by side.

The first level of the Fashion-MNIST Glow works on ``[B, 4, 14, 14]`` tensors (784 numbers per
image). This script times, on that shape and a batch of ``--batch`` images, one training step
(forward with log-det, backward) and one inverse of:

* a Glow step (ActNorm → LU 1×1 convolution → spline coupling, width ``--glow-hidden``): the step
  the shipped model stacks 16 times per level;
* ``InvertibleResidualBlock(784, hidden)`` (Behrmann et al. 2019) with its ``"series"`` log-det
  at several truncation lengths ``n`` (1 Hutchinson draw), and the inverse by fixed-point
  iteration — also reporting the iterations used and the block's bound on the series' bias in
  bits/dim (:meth:`InvertibleResidualBlock.bias_bound` / (784 · ln 2)).

Times are CPU seconds of this process (``time.process_time``, one thread) so that other work on the
machine does not inflate them; each figure is the median of ``--rounds`` rounds in which the
variants alternate, with the spread (min–max). Prints a table, writes JSON.

    .venv/bin/python -m bench.iresnet_image --out docs/results/iresnet_image.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from glowapp.flows import InvertibleResidualBlock
from glowapp.models.glow import FlowStep

SHAPE = (4, 14, 14)
DIM = math.prod(SHAPE)


def glow_step(hidden: int) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    step = FlowStep(SHAPE[0], hidden, coupling="spline", permutation="lu")
    return step, lambda x: x


def iresnet_block(hidden: int, terms: int) -> tuple[torch.nn.Module, Callable]:
    block = InvertibleResidualBlock(DIM, hidden, series_terms=terms, power_iterations=5)
    return block, lambda x: x.flatten(1)


def train_seconds(module: torch.nn.Module, shape: Callable, x: torch.Tensor) -> float:
    """CPU seconds of one forward (with log-det) and backward of ``−mean(log-det) + ½‖y‖²``."""
    module.train()
    begin = time.process_time()
    y, logdet = module(shape(x))
    loss = 0.5 * y.pow(2).flatten(1).sum(1).mean() - logdet.mean()
    loss.backward()
    return time.process_time() - begin


@torch.no_grad()
def inverse_seconds(module: torch.nn.Module, shape: Callable, x: torch.Tensor) -> float:
    module.eval()
    y, _ = module(shape(x))
    begin = time.process_time()
    module.inverse(y)
    return time.process_time() - begin


def fixed_point_iterations(block: InvertibleResidualBlock, x: torch.Tensor) -> int:
    """Iterations the inverse needs for ``x`` (the smallest ``max_iterations`` that succeeds)."""
    block.eval()
    with torch.no_grad():
        y, _ = block(x.flatten(1))
        limit = block.max_iterations
        for k in range(1, limit + 1):
            block.max_iterations = k
            try:
                block.inverse(y)
                return k
            except RuntimeError:
                continue
            finally:
                block.max_iterations = limit
    return limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="images per step (default 32)")
    parser.add_argument("--glow-hidden", type=int, default=96, help="Glow coupling width (96)")
    parser.add_argument("--iresnet-hidden", type=int, default=512, help="i-ResNet width (512)")
    parser.add_argument("--terms", type=int, nargs="+", default=[5, 10, 20], help="series lengths")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/iresnet_image.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(args.batch, *SHAPE)

    variants = {"Glow step (LU 1x1, spline coupling)": glow_step(args.glow_hidden)}
    for n in args.terms:
        variants[f"i-ResNet block, series n={n}"] = iresnet_block(args.iresnet_hidden, n)
    for module, shape in variants.values():  # warm-up (and ActNorm's data-dependent init)
        train_seconds(module, shape, x)
        inverse_seconds(module, shape, x)
    timings: dict[str, dict[str, list[float]]] = {k: {"train": [], "inverse": []} for k in variants}
    for _ in range(args.rounds):
        for name, (module, shape) in variants.items():
            timings[name]["train"].append(train_seconds(module, shape, x))
            timings[name]["inverse"].append(inverse_seconds(module, shape, x))

    rows = []
    glow_train = statistics.median(timings[next(iter(variants))]["train"])
    for name, (module, _) in variants.items():
        train, inverse = timings[name]["train"], timings[name]["inverse"]
        row = {
            "variant": name,
            "parameters": sum(p.numel() for p in module.parameters()),
            "train_s_median": statistics.median(train),
            "train_s_spread": [min(train), max(train)],
            "inverse_s_median": statistics.median(inverse),
            "inverse_s_spread": [min(inverse), max(inverse)],
            "train_vs_glow_step": statistics.median(train) / glow_train,
        }
        if isinstance(module, InvertibleResidualBlock):
            row["series_terms"] = module.series_terms
            row["bias_bound_bpd"] = module.bias_bound() / (DIM * math.log(2))
            row["inverse_iterations"] = fixed_point_iterations(module, x)
        rows.append(row)

    table = Table(
        title=f"one step on [{args.batch}, 4, 14, 14] (CPU s, 1 thread, median of {args.rounds})"
    )
    for column in (
        "variant",
        "params",
        "train step",
        "× Glow step",
        "inverse",
        "bias bound (bpd)",
        "inverse it.",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["variant"], f"{row['parameters']:,}", f"{row['train_s_median']:.4f}",
            f"{row['train_vs_glow_step']:.1f}", f"{row['inverse_s_median']:.4f}",
            f"{row['bias_bound_bpd']:.4f}" if "bias_bound_bpd" in row else "-",
            str(row.get("inverse_iterations", "-")),
        )  # fmt: skip
    Console().print(table)
    report = {
        "schema_version": 1,
        "shape": [args.batch, *SHAPE],
        "clock": "process CPU seconds, 1 thread",
        "rounds": args.rounds,
        "glow_hidden": args.glow_hidden,
        "iresnet_hidden": args.iresnet_hidden,
        "rows": rows,
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
