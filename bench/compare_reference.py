"""Throughput of glowapp against rosinality/glow-pytorch, measured side by side, alternating.

The reference's code is not part of glowapp: pass a checkout's ``model.py``
(``--rosinality-model``; get it with ``git clone https://github.com/rosinality/glow-pytorch``).
Its ``Glow(in_channel, n_flow=K, n_block=L)`` is built with affine coupling and the LU 1×1
convolution, with the coupling width set to the config's ``hidden``, and timed the way its
``train.py`` runs it: inputs ``x/256 − ½ + U(0, 1/256)``, its loss (bits/dim), ``zero_grad``,
backward, optimizer step; evaluation is its forward pass, sampling ``reverse`` of
temperature-0.7 latents. glowapp is timed as :mod:`bench.benchmark` times it
(:class:`bench.workload.Workload`: the module's own steps, its defaults).

Both get the same optimizer — :func:`glowapp.optim.make_adam` (fused Adam) with the
:func:`glowapp.optim.make_schedule` warm-up that ``GlowModule.configure_optimizers`` builds —
the same batch, threads and allocator (``--allocators``: glibc's default, the tuned one that the
``glowapp`` command applies, given to both, or both settings in turn), and evaluation runs
under ``torch.inference_mode`` for both.

This machine's speed drifts by ±25% between processes, so every (config, mode, allocator) cell
alternates the two implementations, each measurement a fresh process — glowapp, rosinality,
glowapp, rosinality, … for ``--rounds`` rounds — and reports the median of the per-round ratios
glowapp ÷ rosinality with their spread (min–max over the rounds).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from bench.configs import LR as PEAK_LR
from bench.configs import MODES, TEMPERATURE, WARMUP_STEPS, Config, configs, make_batch
from bench.timing import log, setup_process, timed
from glowapp.optim import make_adam, make_schedule

REPO = Path(__file__).resolve().parents[1]
IMPLS = ("glowapp", "rosinality")  # the order of every round
ALLOCATORS = ("default", "tuned")


def load_reference(path: Path, hidden: int) -> ModuleType:
    """The reference's ``model`` module, with the coupling network's width set to ``hidden``."""
    spec = importlib.util.spec_from_file_location("reference_glow_model", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    init = module.AffineCoupling.__init__
    names = init.__code__.co_varnames[1 : init.__code__.co_argcount]
    if "filter_size" not in names or init.__defaults__ is None:
        raise SystemExit(f"{path}: AffineCoupling(in_channel, filter_size=…) not found")
    defaults = list(init.__defaults__)
    defaults[names.index("filter_size") - (len(names) - len(defaults))] = hidden
    init.__defaults__ = tuple(defaults)
    return module


def reference_steps(model_path: Path, cfg: Config) -> dict[str, Callable[[], None]]:
    """The reference's train / eval / sample steps for ``cfg`` (see the module docstring)."""
    module = load_reference(model_path, cfg.hidden)
    torch.manual_seed(0)
    model = module.Glow(cfg.channels, cfg.steps, cfg.levels, affine=True, conv_lu=True)
    optimizer = make_adam(model.parameters(), PEAK_LR)
    scheduler = make_schedule(optimizer, "constant", WARMUP_STEPS, 0)
    images = make_batch(cfg)[0]
    n_bins, n_pixel = 2.0**8, cfg.num_dims

    def inputs() -> torch.Tensor:
        x = images.float() / n_bins - 0.5
        return x + torch.rand_like(x) / n_bins

    with torch.no_grad():
        model(inputs())  # ActNorm's data-dependent initialisation
    shapes, c, size = [], cfg.channels, cfg.size
    for _ in range(cfg.levels - 1):
        c, size = c * 2, size // 2
        shapes.append((c, size, size))
    shapes.append((c * 4, size // 2, size // 2))

    def train() -> None:
        model.train()
        log_p, logdet, _ = model(inputs())
        loss = -math.log(n_bins) * n_pixel + logdet + log_p
        loss = (-loss / (math.log(2) * n_pixel)).mean()
        model.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()

    def evaluate() -> None:
        model.eval()
        with torch.inference_mode():
            model(inputs())

    def sample() -> None:
        model.eval()
        with torch.no_grad():
            z = [TEMPERATURE * torch.randn(cfg.batch, *s) for s in shapes]
            model.reverse(z).clamp(-0.5, 0.5)

    return {"train": train, "eval": evaluate, "sample": sample}


def child(args: argparse.Namespace) -> None:
    """One fresh process: one implementation, config, mode and allocator; prints a JSON line."""
    if not setup_process(args.threads, tuned_malloc=args.allocator == "tuned") and (
        args.allocator == "tuned"
    ):
        raise SystemExit("the tuned allocator needs Linux with glibc")
    cfg = configs(args.quick)[args.config]
    if args.impl == "glowapp":
        from bench.workload import workload  # imports Lightning: only in glowapp's processes

        work = workload(cfg)
        step: Callable[[], Any] = lambda: work.step(args.mode)  # noqa: E731
    else:
        step = reference_steps(args.rosinality_model, cfg)[args.mode]
    times, _ = timed(step, args.warmup, args.repeats)
    print(json.dumps({"images_per_s": cfg.batch / statistics.median(times)}))


def measure(args: argparse.Namespace, impl: str, config: str, mode: str, allocator: str) -> float:
    """Images/s of ``impl`` in a fresh process (``python -m bench.compare_reference --child``)."""
    cmd = [sys.executable, "-m", "bench.compare_reference", "--child", impl]
    cmd += ["--configs", config, "--modes", mode, "--allocators", allocator]
    cmd += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
    cmd += ["--warmup", str(args.warmup), "--rosinality-model", str(args.rosinality_model)]
    cmd += ["--quick"] if args.quick else []
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{impl} {config} {mode} ({allocator} allocator) failed:\n{out.stderr}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"])


def alternate(measure_one: Callable[[str], float], rounds: int) -> dict[str, list[float]]:
    """``rounds`` rounds of ``measure_one(impl)`` for each implementation of :data:`IMPLS` in
    turn (glowapp, rosinality, glowapp, rosinality, …): each implementation's list of results."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    runs: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for _ in range(rounds):
        for impl in IMPLS:
            runs[impl].append(measure_one(impl))
    return runs


def ratio_summary(ours: list[float], theirs: list[float]) -> dict[str, Any]:
    """The per-round ratios ``ours[r] / theirs[r]``, their median and their spread (min, max,
    interquartile range, 0 for a single round)."""
    if len(ours) != len(theirs) or not ours:
        raise ValueError(
            f"need one measurement of each per round, got {len(ours)} and {len(theirs)}"
        )
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    # "inclusive": the quartiles stay within the measured ratios, also for 2 or 3 rounds.
    quartiles = (
        statistics.quantiles(ratios, n=4, method="inclusive")
        if len(ratios) >= 2
        else [ratios[0]] * 3
    )
    return {
        "ratios": ratios,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_iqr": quartiles[2] - quartiles[0],
    }


def compare_cell(args: argparse.Namespace, config: str, mode: str, allocator: str) -> dict:
    """One (config, mode, allocator) cell: alternated rounds and the ratio's median and spread."""
    runs = alternate(lambda impl: measure(args, impl, config, mode, allocator), args.rounds)
    return {
        "config": config,
        "mode": mode,
        "allocator": allocator,
        "rounds": args.rounds,
        "glowapp_images_per_s": runs["glowapp"],
        "rosinality_images_per_s": runs["rosinality"],
        "glowapp_median_images_per_s": statistics.median(runs["glowapp"]),
        "rosinality_median_images_per_s": statistics.median(runs["rosinality"]),
        **ratio_summary(runs["glowapp"], runs["rosinality"]),
    }


def print_table(rows: list[dict[str, Any]], rounds: int) -> None:
    """The printed table: medians of each implementation and the ratio's median and spread."""
    table = Table(
        title=f"glowapp ÷ rosinality/glow-pytorch, images/s: median of {rounds} alternated rounds"
    )
    for col in ("cfg", "mode", "allocator", "rosinality", "glowapp", "ratio", "min–max", "IQR"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["config"],
            r["mode"],
            r["allocator"],
            f"{r['rosinality_median_images_per_s']:,.1f}",
            f"{r['glowapp_median_images_per_s']:,.1f}",
            f"×{r['ratio_median']:.2f}",
            f"×{r['ratio_min']:.2f}–{r['ratio_max']:.2f}",
            f"{r['ratio_iqr']:.2f}",
        )
    Console().print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.compare_reference", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--rosinality-model", type=Path, required=True, help="path of its model.py")
    p.add_argument("--configs", nargs="+", choices=("S", "C"), default=["S", "C"])
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--allocators", nargs="+", choices=ALLOCATORS, default=list(ALLOCATORS))
    p.add_argument("--rounds", type=int, default=5, help="alternated rounds per cell (default 5)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="tiny configs: a smoke run, no measurement")
    p.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "compare_reference.json"
    )
    p.add_argument("--child", choices=IMPLS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.rosinality_model.is_file():
        p.error(f"--rosinality-model: {args.rosinality_model}: no such file")
    if args.rounds < 1 or args.repeats < 1 or args.warmup < 0:
        p.error("--rounds and --repeats must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        args.impl, args.config, args.mode = args.child, args.configs[0], args.modes[0]
        args.allocator = args.allocators[0]
        child(args)
        return {}
    rows = []
    for config in args.configs:
        for mode in args.modes:
            for allocator in args.allocators:
                rows.append(compare_cell(args, config, mode, allocator))
                r = rows[-1]
                log(
                    f"{config} {mode} {allocator}: ×{r['ratio_median']:.2f} "
                    f"(rounds: {', '.join(f'{x:.2f}' for x in r['ratios'])})"
                )
    report = {
        "schema": 2,
        "args": {k: str(v) for k, v in vars(args).items() if k != "child"},
        "quick": args.quick,
        "order": "per round: " + ", ".join(IMPLS) + "; each measurement a fresh process",
        "optimizer": "both: glowapp.optim.make_adam (fused Adam) + make_schedule warm-up",
        "rows": rows,
    }
    print_table(rows, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
