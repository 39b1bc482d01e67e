"""Inference as the tools run it: sampling 1,000 images (with and without denoising) and the whole
``glowapp evaluate`` command.

    # 1,000 samples of the shipped model, alternating the folded inference path and the plain one,
    # without and with the denoising step (which needs a model trained with Gaussian noise)
    .venv/bin/python -m bench.inference sample --rounds 3 --json bench/results/inference_sample.json

    # the whole `glowapp evaluate --num 10000` command (start-up, data, 10,000 samples per
    # temperature, features, metrics), wall-clock, in a fresh process per round
    .venv/bin/python -m bench.inference evaluate --rounds 1 --json bench/results/inference_evaluate.json

**sample**: :func:`glowapp.generate.sample_grid` (what ``glowapp sample``, ``evaluate``, the demo
and the callbacks call) of ``--num`` images at temperature 0.7 from ``--ckpt`` (default: the
shipped ``fashion-mnist``). Denoising (Tweedie's step, one backward pass per batch: always the
plain layers, since it needs gradients) applies only to models trained with Gaussian noise, so
the checkpoint's flow is put in an :class:`~glowapp.ImageFlow` with
``Dequantization(kind="gaussian", sigma=0.05)`` — the same cost as a model trained that way.
Four variants alternate in every round: the folded path and the plain one
(``flow.use_fast_inference(False)``), each without and with denoising; the table gives the
median seconds and the per-round ratios plain ÷ folded.

**evaluate**: ``glowapp evaluate --ckpt CKPT --num N --device cpu`` (plus the options after
``--``), timed as a whole in a fresh process per round; its exit status must be 0.

Both record the CPU (model and vector flags), the threads and the load averages in the JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from bench.configs import TEMPERATURE
from bench.timing import load_average, log, machine_info, setup_process
from glowapp.generate import sample_grid
from glowapp.image_flow import ImageFlow
from glowapp.loading import load
from glowapp.options import Dequantization

REPO = Path(__file__).resolve().parents[1]
SIGMA = 0.05
VARIANTS = ("folded", "plain", "folded+denoise", "plain+denoise")


def noisy_model(ckpt: str) -> ImageFlow:
    """``ckpt``'s flow and preprocessing with Gaussian-noise dequantisation (σ = :data:`SIGMA`),
    in eval mode: a model whose samples are denoised by default."""
    trained = load(ckpt)
    noisy = Dequantization(kind="gaussian", sigma=SIGMA)
    return ImageFlow(trained.flow, trained.preprocessing, noisy, trained.sampling).eval()


def sample_variants(model: ImageFlow, num: int) -> dict[str, Callable[[], Any]]:
    """One call per variant of :data:`VARIANTS`: ``num`` samples through ``sample_grid``."""

    def run(fast: bool, denoise: bool) -> Callable[[], Any]:
        def call() -> Any:
            model.flow.use_fast_inference(fast)
            try:
                return sample_grid(model, [TEMPERATURE], num, seed=0, denoise=denoise)
            finally:
                model.flow.use_fast_inference(True)

        return call

    return {
        "folded": run(True, False),
        "plain": run(False, False),
        "folded+denoise": run(True, True),
        "plain+denoise": run(False, True),
    }


def time_sampling(args: argparse.Namespace) -> dict[str, Any]:
    """``--rounds`` rounds of the four variants in turn, after one untimed round: the first
    full-size backward pass pays for the allocator's growth, which a small warm-up call does
    not (it once made the first denoised variant look 1.9× slower)."""
    setup_process(args.threads)
    model = noisy_model(args.ckpt)
    calls = sample_variants(model, args.num)
    for call in calls.values():
        call()
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    loads = [load_average()]
    for r in range(args.rounds):
        for variant in VARIANTS:
            t0 = time.perf_counter()
            calls[variant]()
            seconds[variant].append(time.perf_counter() - t0)
            log(f"round {r + 1}: {variant} {seconds[variant][-1]:.2f} s")
        loads.append(load_average())
    speedups = {
        kind: [p / f for p, f in zip(seconds[plain], seconds[folded], strict=True)]
        for kind, folded, plain in (
            ("sample", "folded", "plain"),
            ("sample+denoise", "folded+denoise", "plain+denoise"),
        )
    }
    return {
        "what": f"{args.num} samples at T={TEMPERATURE} through glowapp.generate.sample_grid",
        "ckpt": args.ckpt,
        "dequantization": f"gaussian, sigma={SIGMA}",
        "rounds": args.rounds,
        "seconds": seconds,
        "median_seconds": {v: statistics.median(s) for v, s in seconds.items()},
        "plain_over_folded": speedups,
        "median_plain_over_folded": {k: statistics.median(v) for k, v in speedups.items()},
        "load_average_per_round": loads,
    }


def time_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """``--rounds`` wall-clock timings of the whole ``glowapp evaluate`` command."""
    command = [str(Path(sys.executable).with_name("glowapp")), "evaluate", "--ckpt", args.ckpt]
    command += ["--num", str(args.num), "--device", "cpu", *args.extra]
    seconds, loads = [], [load_average()]
    for r in range(args.rounds):
        t0 = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        seconds.append(time.perf_counter() - t0)
        loads.append(load_average())
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        log(f"round {r + 1}: {seconds[-1]:.1f} s")
    return {
        "command": command[1:],
        "rounds": args.rounds,
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
        "load_average_per_round": loads,
    }


def print_table(kind: str, result: dict[str, Any]) -> None:
    """The printed table of a ``sample`` or ``evaluate`` result."""
    table = Table(title=f"bench.inference {kind}: median of {result['rounds']} rounds")
    if kind == "sample":
        for col in ("variant", "seconds", "plain ÷ folded"):
            table.add_column(col, justify="right")
        ratios = result["median_plain_over_folded"]
        for variant in VARIANTS:
            kind_of = "sample+denoise" if "denoise" in variant else "sample"
            ratio = f"×{ratios[kind_of]:.2f}" if variant.startswith("folded") else ""
            table.add_row(variant, f"{result['median_seconds'][variant]:.2f}", ratio)
    else:
        table.add_column("command")
        table.add_column("seconds", justify="right")
        table.add_row(" ".join(result["command"]), f"{result['median_seconds']:.1f}")
    Console().print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.inference",
        description=__doc__.split("\n\n")[0],
        epilog="evaluate: options after -- go to glowapp evaluate (e.g. -- --data-root data)",
    )
    p.add_argument("what", choices=("sample", "evaluate"))
    p.add_argument("--ckpt", default="fashion-mnist", help="checkpoint path or shipped name")
    p.add_argument(
        "--num", type=int, default=None, help="images (default: 1000 sample, 10000 evaluate)"
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" goes to `glowapp evaluate` as it is.
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    args.extra = argv[cut + 1 :]
    if args.num is None:
        args.num = 1000 if args.what == "sample" else 10_000
    if args.rounds < 1 or args.num < 1:
        p.error("--rounds and --num must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = time_sampling(args) if args.what == "sample" else time_evaluate(args)
    report = {"machine": machine_info(args.threads), args.what: result}
    print_table(args.what, result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
