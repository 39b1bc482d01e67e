"""Numerical robustness of a long mixed-precision run: no NaN/Inf, small inverse drift, finite samples.

Trains a config (default: the quickstart, ``configs/glow_fashion_mnist.yaml``) on real data for
``--steps`` optimizer steps at ``--precision`` (default ``bf16-mixed``, the CPU twin of GPU mixed
precision), recording every step's loss, then measures on the trained model (float32, eval):

* non-finite training losses, and steps skipped by :class:`~glowapp.callbacks.SkipNonFiniteSteps`
  (the non-finite-step policy the configs run with);
* inverse drift: ``max |decode(encode(x)) − x|`` over ``--test-images`` dequantised test images,
  in the flow's input space;
* ``--samples`` samples at T = 1: how many contain a non-finite value;
* test bits/dim of those test images.

Prints a table and writes JSON (``--out``). Exit status 1 if any check fails (non-finite loss,
skipped step, drift ≥ 1e-3 or a non-finite sample), so it can gate a release.

    .venv/bin/python -m bench.stability                      # 2,000 bf16-mixed steps (~30 min on 2 cores)
    .venv/bin/python -m bench.stability --quick --out /tmp/s.json   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from rich.console import Console
from rich.table import Table

from glowapp import GlowModule
from glowapp.callbacks import SkipNonFiniteSteps
from glowapp.runtime import tune_malloc
from glowapp.training_cli import instantiate

REPO = Path(__file__).resolve().parents[1]
DRIFT_LIMIT = 1e-3


class LossRecorder(Callback):
    """Keeps every training step's loss (a float, NaN/Inf included)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))


def build(
    config: Path, overrides: list[str]
) -> tuple[GlowModule, pl.LightningDataModule, float | None]:
    """The module and DataModule ``glowapp fit --config CONFIG OVERRIDES`` would build, and the
    config's gradient clipping (read exactly as the CLI reads it)."""
    cli = instantiate(
        [
            "--config",
            str(config),
            *overrides,
            "--trainer.logger",
            "false",
            "--trainer.callbacks",
            "[]",
        ]
    )
    return cli.model, cli.datamodule, cli.trainer.gradient_clip_val


def measure(
    module: GlowModule, datamodule: pl.LightningDataModule, test_images: int, samples: int
) -> dict[str, Any]:
    datamodule.setup("test")
    images = torch.cat([batch[0] for batch in datamodule.test_dataloader()])[:test_images]
    module = module.float().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        x, _ = module.preprocess.encode_images(images, noise=True, generator=generator)
        latents, _ = module.flow.encode(x)
        drift = float((module.flow.decode(latents) - x).abs().max())
        bpd = float(module.bits_per_dim(images, generator=torch.Generator().manual_seed(1)).mean())
        torch.manual_seed(0)
        drawn = torch.cat([module.flow.sample(n, temperature=1.0) for n in _chunks(samples, 250)])
    bad_samples = int((~torch.isfinite(drawn)).flatten(1).any(1).sum())
    return {
        "inverse_drift": drift,
        "test_bpd": bpd,
        "test_images": len(images),
        "samples": samples,
        "nonfinite_samples": bad_samples,
    }


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - i) for i in range(0, total, size)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "glow_fashion_mnist.yaml")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", default=None, help="override the config's data root")
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="tiny model, 30 steps: a smoke test")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "stability.json")
    args = parser.parse_args(argv)

    tune_malloc()  # as the glowapp command does
    torch.set_num_threads(args.threads)
    overrides = ["--data.init_args.root", args.data_root] if args.data_root else []
    if args.quick:
        args.steps, args.test_images, args.samples = 30, 64, 64
        overrides += ["--model.flow.init_args.steps", "2", "--model.flow.init_args.hidden", "16"]
        overrides += ["--data.init_args.train_limit", "512", "--data.init_args.test_limit", "64"]
    pl.seed_everything(0, verbose=False)
    module, datamodule, gradient_clip_val = build(args.config, overrides)
    recorder, skipper = LossRecorder(), SkipNonFiniteSteps()
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, precision=args.precision, max_steps=args.steps, max_epochs=-1,
        gradient_clip_val=gradient_clip_val, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False, callbacks=[recorder, skipper],
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    train_seconds = time.perf_counter() - start

    losses = recorder.losses
    report = {
        "config": str(
            args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config
        ),
        "overrides": overrides,
        "precision": args.precision,
        "steps": trainer.global_step,
        "train_seconds": train_seconds,
        "images_per_second": trainer.global_step * datamodule.batch_size / train_seconds,
        "nonfinite_losses": sum(not math.isfinite(v) for v in losses),
        "skipped_steps": skipper.skipped_steps,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "min_loss": min(losses) if losses else None,
        **measure(module, datamodule, args.test_images, args.samples),
        "machine": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": args.threads,
        },
    }
    failures = [
        f"{report['nonfinite_losses']} non-finite losses" if report["nonfinite_losses"] else "",
        f"{report['skipped_steps']} skipped steps" if report["skipped_steps"] else "",
        f"inverse drift {report['inverse_drift']:.2e} ≥ {DRIFT_LIMIT}"
        if report["inverse_drift"] >= DRIFT_LIMIT
        else "",
        f"{report['nonfinite_samples']} non-finite samples" if report["nonfinite_samples"] else "",
    ]
    report["failures"] = [f for f in failures if f]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    table = Table(title=f"stability: {report['config']} at {args.precision}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("steps", "images_per_second", "nonfinite_losses", "skipped_steps", "first_loss", "last_loss",
                "inverse_drift", "nonfinite_samples", "samples", "test_bpd"):  # fmt: skip
        value = report[key]
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
    print(f"wrote {args.out}")
    if report["failures"]:
        print("FAILED: " + "; ".join(report["failures"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
