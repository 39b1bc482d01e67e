#!/usr/bin/env python
"""Model-quality benchmark: test bits/dim reached after fixed wall-clock training budgets.

One training run of a config (default ``configs/glow_fashion_mnist.yaml``; several ``--config``
files stack, and any LightningCLI override such as ``--model.flow.init_args.coupling affine``
is passed on; the config is read by :func:`glowapp.training_cli.instantiate`, as ``glowapp fit`` reads it). A
small callback saves a checkpoint each time the *training time* crosses a budget
(``--minutes 10 30``) and stops training at the last one. Each checkpoint is then evaluated on
the config's full test split (the 10,000 Fashion-MNIST test images) exactly as ``glowapp test``
does:

* ``test_bpd``: the bound on the discrete bits/dim with one dequantisation draw per image (with
  variational dequantisation, the variational bound ``−E_q[log p(x + u) − log q(u | x)]``);
* ``test_bpd_iw``: the importance-weighted estimate over ``--iw-samples`` draws (default 16 with
  variational dequantisation, else off; pass ``--iw-samples 16`` to get it for uniform
  dequantisation as well, so the two compare on equal terms).

Training time runs from the first training batch and excludes checkpoint writing; validation is
switched off (it would eat into the budget). ``--clock wall`` (default) counts wall-clock seconds;
``--clock cpu`` counts the process's CPU seconds (all its threads), which other work on the machine
does not inflate: two runs with ``--threads 1 --clock cpu`` can share a machine and still compare.
Each budget's checkpoint is also timed drawing ``--sample-images`` samples at T = 0.7 (same clock).
It writes a JSON report (``--out``) with the config, overrides, every budget's steps, training and
sampling images/s and test bits/dim, and prints a table.

    .venv/bin/python -m bench.quality --minutes 10 30
    .venv/bin/python -m bench.quality --minutes 10 30 --model.flow.init_args.coupling affine \
        --out bench/results/quality_affine.json
    .venv/bin/python -m bench.quality --minutes 30 --model.dequantization.kind variational
    .venv/bin/python -m bench.quality --minutes 10 30 --threads 1 --clock cpu \
        --model.flow.init_args.permutation emerging --out bench/results/quality_emerging.json
    .venv/bin/python -m bench.quality --quick --out /tmp/quality.json     # a seconds-long smoke run

``--quick``: budgets in seconds (default 2 and 4), a tiny model and data subset, 64 test images,
2 importance samples: it checks the pipeline, it does not measure anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from rich.console import Console
from rich.table import Table

from glowapp.callbacks import EMA
from glowapp.module import GlowModule
from glowapp.runtime import tune_malloc
from glowapp.training_cli import GlowCLI, instantiate

SCHEMA_VERSION = 2
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "glow_fashion_mnist.yaml"
QUICK_OVERRIDES = [
    "--model.flow.init_args.steps", "1", "--model.flow.init_args.hidden", "8",
    "--model.warmup_steps", "5",
    "--data.init_args.batch_size", "16", "--data.init_args.train_limit", "512",
    "--data.init_args.val_limit", "16", "--data.init_args.test_limit", "64",
]  # fmt: skip
# Whatever the config says: no logger, no config callbacks (they would write checkpoints and
# images into the config's directories), no validation, no step or epoch limit.
RUN_OVERRIDES = [
    "--trainer.logger", "false", "--trainer.callbacks", "[]", "--trainer.enable_checkpointing", "false",
    "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
    "--trainer.max_epochs", "-1", "--trainer.max_steps", "-1", "--trainer.max_time", "null",
]  # fmt: skip


class BudgetCheckpoints(Callback):
    """Save ``budget_<i>.ckpt`` in ``directory`` when training time crosses ``budgets_s[i]``.

    Training time starts at the first training batch and excludes the checkpoint writes; training
    stops after the last budget. Budgets not reached when training ends otherwise (e.g. a
    ``max_epochs`` limit) get a checkpoint of the final state, marked ``budget_reached: false``.
    Each crossing appends a record (budget, elapsed seconds, optimizer steps, images seen,
    images/s, checkpoint path) to :attr:`records`.
    """

    def __init__(
        self,
        budgets_s: list[float],
        directory: Path,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.budgets_s = sorted(budgets_s)
        self.directory = directory
        self.clock = clock
        self.records: list[dict[str, Any]] = []
        self._start: float | None = None
        self._excluded = 0.0
        self._images = 0

    def _elapsed(self) -> float:
        assert self._start is not None
        return self.clock() - self._start - self._excluded

    def _save(self, trainer: pl.Trainer, reached: bool) -> None:
        elapsed, begin = self._elapsed(), self.clock()
        budget = self.budgets_s[len(self.records)]
        path = self.directory / f"budget_{len(self.records)}.ckpt"
        trainer.save_checkpoint(path)
        self.records.append(
            {
                "budget_s": budget,
                "budget_reached": reached,
                "elapsed_s": elapsed,
                "steps": trainer.global_step,
                "images_seen": self._images,
                "images_per_s": self._images / elapsed if elapsed > 0 else None,
                "checkpoint": str(path),
            }
        )
        self._excluded += self.clock() - begin

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._start is None:
            self._start = self.clock()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._images += len(batch[0])
        while (
            len(self.records) < len(self.budgets_s)
            and self._elapsed() >= self.budgets_s[len(self.records)]
        ):
            self._save(trainer, reached=True)
        if len(self.records) == len(self.budgets_s):
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        while self._start is not None and len(self.records) < len(self.budgets_s):
            self._save(trainer, reached=False)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description="Train a config for fixed wall-clock budgets and report test bits/dim at each.",
        epilog="Other options (e.g. --model.flow.init_args.coupling affine, "
        "--model.dequantization.kind variational, --trainer.accelerator gpu) are LightningCLI "
        "overrides of the config.",
    )
    parser.add_argument(
        "--config",
        action="append",
        type=Path,
        help=f"config file(s), stacked (default: {DEFAULT_CONFIG.relative_to(REPO)})",
    )
    parser.add_argument(
        "--minutes", type=float, nargs="+", help="training-time budgets in minutes (default: 10 30)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        nargs="+",
        help="budgets in seconds instead (default with --quick: 2 4)",
    )
    parser.add_argument(
        "--iw-samples",
        type=int,
        default=None,
        help="importance samples for test_bpd_iw (default: 16 with variational dequantisation, else 0 = off)",
    )
    parser.add_argument(
        "--test-limit",
        type=int,
        default=None,
        help="evaluate on the first N test images only (default: all; --quick: 64)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="what a budget counts: wall-clock seconds, or the process's CPU seconds (default: wall)",
    )
    parser.add_argument(
        "--sample-images",
        type=int,
        default=None,
        help="samples timed per budget checkpoint, at T = 0.7 (default 256; --quick: 8)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's)"
    )
    parser.add_argument(
        "--ema",
        type=float,
        default=0.0,
        metavar="DECAY",
        help="keep an exponential moving average of the weights (glowapp.callbacks.EMA) and "
        "evaluate it, as the shipped configs do (default: 0 = off)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the budget checkpoints go (default: next to --out)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results" / "quality.json",
        help="JSON report (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny model, budgets in seconds, a test subset: a smoke run",
    )
    args, overrides = parser.parse_known_args(argv)
    if args.minutes and args.seconds:
        parser.error("give budgets with --minutes or with --seconds, not both")
    if args.seconds:
        args.budgets_s = args.seconds
    elif args.minutes:
        args.budgets_s = [60.0 * m for m in args.minutes]
    else:
        args.budgets_s = [2.0, 4.0] if args.quick else [600.0, 1800.0]
    if any(b <= 0 for b in args.budgets_s):
        parser.error(f"budgets must be positive, got {args.budgets_s} seconds")
    return args, overrides


def build(args: argparse.Namespace, overrides: list[str]) -> GlowCLI:
    """The config's model, DataModule and trainer, with the benchmark's overrides applied."""
    configs = args.config or [DEFAULT_CONFIG]
    cli_args = [arg for path in configs for arg in ("--config", str(path))]
    cli_args += (QUICK_OVERRIDES if args.quick else []) + overrides + RUN_OVERRIDES
    cli_args += [
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
    ]
    cli_args += ["--trainer.default_root_dir", str(args.workdir)]
    if args.test_limit is not None:
        cli_args += ["--data.init_args.test_limit", str(args.test_limit)]
    return instantiate(cli_args)


def sampling_speed(module: GlowModule, num: int, clock: Callable[[], float]) -> float:
    """Images/s drawing ``num`` samples at T = 0.7 in batches of up to 64 (after one warm-up batch)."""
    batch = min(num, 64)
    module.sample(min(num, 4), temperature=0.7)
    begin = clock()
    for start in range(0, num, batch):
        module.sample(min(batch, num - start), temperature=0.7)
    return num / max(clock() - begin, 1e-9)


def evaluate(
    checkpoint: str,
    data: pl.LightningDataModule,
    iw_samples: int,
    accelerator: str,
    sample_images: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """``glowapp test``'s metrics of a checkpoint: ``test/bpd`` and, if ``iw_samples``,
    ``test/bpd_iw``; with ``sample_images``, also ``sample_images_per_s``."""
    module = GlowModule.load_from_checkpoint(
        checkpoint, map_location="cpu", weights_only=True, iw_samples=iw_samples
    )
    speed = sampling_speed(module.eval(), sample_images, clock) if sample_images else None
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    return {**metrics, "sample_images_per_s": speed}


def machine() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def print_table(report: dict[str, Any]) -> None:
    table = Table(
        title=f"test bits/dim after fixed training time ({report['test_images']} test images)"
    )
    columns = ("budget", "reached", "steps", "train img/s", "sample img/s", "test bpd (bound)")
    for name in (*columns, "test bpd (IW)"):
        table.add_column(name, justify="right")
    for row in report["budgets"]:
        iw = row.get("test_bpd_iw")
        budget = row["budget_s"]
        table.add_row(
            (f"{budget / 60:g} min" if budget >= 60 else f"{budget:g} s") + f" ({report['clock']})",
            "yes" if row["budget_reached"] else "no (training ended)",
            str(row["steps"]),
            f"{row['images_per_s']:.1f}" if row["images_per_s"] else "-",
            f"{row['sample_images_per_s']:.1f}" if row.get("sample_images_per_s") else "-",
            f"{row['test_bpd']:.4f}",
            f"{iw:.4f} (S={report['iw_samples']})" if iw is not None else "-",
        )
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    tune_malloc()  # as the glowapp command does
    if args.threads:
        torch.set_num_threads(args.threads)
    args.workdir = args.workdir or args.out.parent / f"{args.out.stem}_checkpoints"
    args.workdir.mkdir(parents=True, exist_ok=True)
    cli = build(args, overrides)
    model: GlowModule = cli.model
    dequantization = model.hparams.dequantization["kind"]
    iw_samples = args.iw_samples
    if iw_samples is None:
        iw_samples = (2 if args.quick else 16) if dequantization == "variational" else 0
    clock = CLOCKS[args.clock]
    sample_images = (
        args.sample_images if args.sample_images is not None else (8 if args.quick else 256)
    )
    budgets = BudgetCheckpoints(args.budgets_s, args.workdir, clock)
    if args.ema:
        cli.trainer.callbacks.append(EMA(args.ema))
    cli.trainer.callbacks.append(budgets)
    cli.trainer.fit(model, datamodule=cli.datamodule)

    accelerator = (
        "gpu" if cli.trainer.accelerator.__class__.__name__ == "CUDAAccelerator" else "cpu"
    )
    rows = []
    for record in budgets.records:
        metrics = evaluate(
            record["checkpoint"], cli.datamodule, iw_samples, accelerator, sample_images, clock
        )
        rows.append(
            {
                **record,
                "test_bpd": metrics["test/bpd"],
                "test_bpd_iw": metrics.get("test/bpd_iw"),
                "sample_images_per_s": metrics["sample_images_per_s"],
            }
        )
    data = cli.datamodule
    report = {
        "schema_version": SCHEMA_VERSION,
        "quick": args.quick,
        "configs": [str(p) for p in (args.config or [DEFAULT_CONFIG])],
        "overrides": (QUICK_OVERRIDES if args.quick else []) + overrides,
        "model": {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.hparams.items()},
        "dequantization": dequantization,
        "iw_samples": iw_samples,
        "clock": args.clock,
        "ema": args.ema,
        "sample_images": sample_images,
        "test_images": len(data.test_dataset),
        "notes": "test_bpd: the bound with one dequantisation draw per image (the variational bound "
        "under variational dequantisation); test_bpd_iw: importance-weighted estimate over "
        "iw_samples draws (tighter). Training time excludes checkpoint writes; no validation. "
        "clock: wall = wall-clock seconds, cpu = the process's CPU seconds (budgets, images/s).",
        "machine": machine(),
        "budgets": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
