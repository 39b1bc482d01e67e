#!/usr/bin/env python
"""Draw a run's bits/dim against training time from its CSVLogger ``metrics.csv``.

The time axis is the ``time/train_hours`` column that ``glowapp.callbacks.TrainingClock`` logs
(validation rows take the time of the nearest logged step). For a run logged without it, pass
``--hours H`` (the run's total wall-clock hours): the axis is then the step scaled to it, and
the label says it is approximate. Training bits/dim is smoothed over ``--smooth`` logged points;
validation bits/dim is drawn as logged.

    .venv/bin/python scripts/plot_training_curve.py logs/fashion-mnist-conditional/version_0/metrics.csv \\
        --title "conditional Glow" --out docs/training_curve_conditional.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

TIME = "time/train_hours"


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """Each column of ``metrics.csv`` that has values, as ``(steps, values)`` stacked ``[2, N]``."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: no logged rows")
    columns: dict[str, np.ndarray] = {}
    for name in rows[0]:
        if name in ("step", "epoch"):
            continue
        points = [(float(r["step"]), float(r[name])) for r in rows if r.get(name)]
        if points:
            columns[name] = np.array(points).T
    return columns


def hours_of(
    columns: dict[str, np.ndarray], steps: np.ndarray, total_hours: float | None, last_step: float
) -> np.ndarray:
    """Training hours at ``steps``: interpolated from the clock column, or the steps scaled so
    that ``last_step`` (the run's last logged step) falls at ``total_hours``."""
    if TIME in columns:
        clock_steps, hours = columns[TIME]
        return np.interp(steps, clock_steps, hours)
    if total_hours is None:
        raise ValueError(f"no {TIME} column (TrainingClock): pass --hours, the run's total")
    return steps / last_step * total_hours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", type=Path, help="a CSVLogger metrics.csv")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default="", help="figure title")
    parser.add_argument(
        "--hours", type=float, default=None, help="total hours, without a clock column"
    )
    parser.add_argument("--max-step", type=float, default=None, help="draw up to this step only")
    parser.add_argument(
        "--smooth", type=int, default=10, help="training points averaged (default 10)"
    )
    args = parser.parse_args(argv)

    columns = read_metrics(args.metrics)
    last_step = max(float(c[0].max()) for c in columns.values())
    if args.max_step is not None:
        columns = {k: v[:, v[0] <= args.max_step] for k, v in columns.items()}
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    if "train/bpd" in columns:
        steps, bpd = columns["train/bpd"]
        k = max(1, min(args.smooth, len(bpd)))
        smooth = np.convolve(bpd, np.ones(k) / k, mode="valid")
        axes.plot(hours_of(columns, steps[k - 1 :], args.hours, last_step), smooth, lw=1, alpha=0.7,
                  label=f"train (mean of {k} logged batches)")  # fmt: skip
    if "val/bpd" in columns:
        steps, bpd = columns["val/bpd"]
        axes.plot(
            hours_of(columns, steps, args.hours, last_step), bpd, "o-", ms=3, label="validation"
        )
        axes.annotate(f"{bpd[-1]:.3f}", (hours_of(columns, steps[-1:], args.hours, last_step)[0], bpd[-1]),
                      textcoords="offset points", xytext=(4, 6), fontsize=8)  # fmt: skip
    approximate = TIME not in columns
    axes.set_xlabel(
        "training hours"
        + (" (approximate: steps scaled to the run's total)" if approximate else "")
    )
    axes.set_ylabel("bits/dim")
    axes.set_title(args.title)
    axes.grid(alpha=0.3)
    axes.legend()
    low = min(float(np.min(v[1])) for k, v in columns.items() if k.endswith("/bpd"))
    axes.set_ylim(low - 0.05, low + 0.8)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
