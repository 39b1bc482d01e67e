"""Throughput of glowapp against rosinality/glow-pytorch, measured side by side, alternating.

The reference's code is not part of glowapp: pass a checkout's ``model.py``
(``--rosinality-model``; get it with ``git clone https://github.com/rosinality/glow-pytorch``).
Its ``Glow(in_channel, n_flow=K, n_block=L)`` is built with affine coupling and the LU 1×1
convolution, with the coupling width set to the config's ``hidden``, and timed the way its
``train.py`` runs it: inputs ``x/256 − ½ + U(0, 1/256)``, its loss (bits/dim), ``zero_grad``,
backward, optimizer step; evaluation is its forward pass, sampling ``reverse`` of
temperature-0.7 latents.

glowapp is timed through what its users and tools call:

* **train**: ``glowapp fit``'s step, :class:`bench.workload.Workload` (the module's own steps and
  defaults, as :mod:`bench.benchmark` times it);
* **eval**: the public density object, ``glowapp.ImageFlow(Glow(...))`` in eval mode (ActNorm
  data-initialised first), ``bits_per_dim(images)`` under ``torch.inference_mode`` — the folded
  inference path (:mod:`glowapp.flows.folding`) that ``glowapp score``/``ood``/``evaluate`` use;
* **sample**: the same object through ``glowapp.generate.sample_grid(model, [0.7], batch)``, what
  ``glowapp sample``, ``evaluate``, the demo and the callbacks call.

``--plain`` also times glowapp with the folded path switched off
(``flow.use_fast_inference(False)``: every layer run as in training) in the same rounds.

Both get the same optimizer — :func:`glowapp.optim.make_adam` (fused Adam) with the
:func:`glowapp.optim.make_schedule` warm-up that ``GlowModule.configure_optimizers`` builds —
the same batch, threads and allocator (``--allocators``: glibc's default, the tuned one that the
``glowapp`` command applies, given to both, or both settings in turn), and evaluation runs
under ``torch.inference_mode`` for both.

This machine's speed drifts by ±25% between processes, so every (config, mode, allocator) cell
alternates the implementations, each measurement a fresh process — glowapp, rosinality,
glowapp, rosinality, … for ``--rounds`` rounds — and reports the median of the per-round ratios
glowapp ÷ rosinality with their spread (min–max over the rounds), and the load averages seen.
Each process also counts the convolution and matmul FLOPs of one step
(:func:`bench.timing.count_flops`), so the JSON gives the FLOP/s each implementation reaches,
as a fraction of the machine's dense peak measured in the same run (``--peak``: the best of a
float32 matmul and a oneDNN 1×1 convolution, at the same threads).
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
from bench.timing import (
    count_flops,
    load_average,
    log,
    machine_info,
    matmul_flops,
    setup_process,
    timed,
)
from glowapp.generate import sample_grid
from glowapp.image_flow import ImageFlow
from glowapp.optim import make_adam, make_schedule

REPO = Path(__file__).resolve().parents[1]
IMPLS = ("glowapp", "rosinality")  # the order of every round
PLAIN = "glowapp-plain"  # glowapp without the folded inference path (--plain)
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


def glowapp_steps(cfg: Config, fast: bool = True) -> dict[str, Callable[[], Any]]:
    """glowapp's eval / sample steps through the public :class:`glowapp.ImageFlow` (see the
    module docstring); ``fast=False`` switches the folded inference path off."""
    torch.manual_seed(0)
    model = ImageFlow(cfg.flow())
    images = make_batch(cfg)[0]
    with torch.no_grad():
        model.train().bits_per_dim(images)  # ActNorm's data-dependent initialisation
    model.eval().flow.use_fast_inference(fast)
    seeds = iter(range(1 << 30))

    def evaluate() -> None:
        with torch.inference_mode():
            model.bits_per_dim(images)

    def sample() -> None:
        sample_grid(model, [TEMPERATURE], cfg.batch, seed=next(seeds))

    return {"eval": evaluate, "sample": sample}


def child(args: argparse.Namespace) -> None:
    """One fresh process: one implementation, config, mode and allocator; prints a JSON line
    with its images/s and the FLOPs of one step."""
    if not setup_process(args.threads, tuned_malloc=args.allocator == "tuned") and (
        args.allocator == "tuned"
    ):
        raise SystemExit("the tuned allocator needs Linux with glibc")
    cfg = configs(args.quick)[args.config]
    if args.impl == "rosinality":
        step: Callable[[], Any] = reference_steps(args.rosinality_model, cfg)[args.mode]
    elif args.mode == "train":
        if args.impl == PLAIN:
            raise SystemExit("--plain only concerns eval and sample (training never folds)")
        from bench.workload import workload  # imports Lightning: only for glowapp's training

        work = workload(cfg)
        step = lambda: work.step(args.mode)  # noqa: E731
    else:
        step = glowapp_steps(cfg, fast=args.impl != PLAIN)[args.mode]
    times, _ = timed(step, args.warmup, args.repeats)
    flops = count_flops(step)
    print(json.dumps({"images_per_s": cfg.batch / statistics.median(times), "flops": flops}))


def peak_flops(threads: int, quick: bool) -> dict[str, Any]:
    """The machine's practical dense float32 peak at ``threads``: a matmul (MKL) and a
    channels-last 1×1 convolution (oneDNN, the kernel glowapp's inference path uses), each the
    median of several runs; ``best_flops_per_s`` is the higher of the two."""
    n, repeats = (256, 3) if quick else (2048, 10)
    matmul = matmul_flops(n, threads, repeats)
    pixels, width = (1024, 64) if quick else (16384, 256)
    x = torch.randn(1, width, pixels // 64, 64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(width, width, 1, 1)
    wall, _ = timed(lambda: torch.nn.functional.conv2d(x, w), warmup=2, repeats=repeats)
    conv = {
        "pixels": pixels,
        "width": width,
        "median_s": statistics.median(wall),
        "flops_per_s": 2.0 * pixels * width * width / statistics.median(wall),
    }
    return {
        "matmul": matmul,
        "conv1x1": conv,
        "best_flops_per_s": max(matmul["flops_per_s"], conv["flops_per_s"]),
    }


def measure(
    args: argparse.Namespace, impl: str, config: str, mode: str, allocator: str
) -> dict[str, float]:
    """``{"images_per_s", "flops"}`` of ``impl`` in a fresh process
    (``python -m bench.compare_reference --child``)."""
    cmd = [sys.executable, "-m", "bench.compare_reference", "--child", impl]
    cmd += ["--configs", config, "--modes", mode, "--allocators", allocator]
    cmd += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
    cmd += ["--warmup", str(args.warmup), "--rosinality-model", str(args.rosinality_model)]
    cmd += ["--quick"] if args.quick else []
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{impl} {config} {mode} ({allocator} allocator) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def alternate(
    measure_one: Callable[[str], float], rounds: int, impls: tuple[str, ...] = IMPLS
) -> dict[str, list[float]]:
    """``rounds`` rounds of ``measure_one(impl)`` for each implementation of ``impls`` in
    turn (glowapp, rosinality, glowapp, rosinality, …): each implementation's list of results."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    runs: dict[str, list[float]] = {impl: [] for impl in impls}
    for _ in range(rounds):
        for impl in impls:
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


def compare_cell(
    args: argparse.Namespace, config: str, mode: str, allocator: str, peak: float | None = None
) -> dict[str, Any]:
    """One (config, mode, allocator) cell: alternated rounds, the ratio's median and spread,
    the load averages before and after, and (given the machine's ``peak`` FLOP/s) the share
    of it each implementation reaches."""
    impls = (*IMPLS, PLAIN) if args.plain and mode != "train" else IMPLS
    flops: dict[str, float] = {}

    def one(impl: str) -> float:
        result = measure(args, impl, config, mode, allocator)
        flops[impl] = result["flops"]
        return result["images_per_s"]

    load_before = load_average()
    runs = alternate(one, args.rounds, impls)
    row: dict[str, Any] = {
        "config": config,
        "mode": mode,
        "allocator": allocator,
        "rounds": args.rounds,
        "load_average": [load_before, load_average()],
    }
    batch = configs(args.quick)[config].batch
    for impl in impls:
        key = impl.replace("-", "_")
        median = statistics.median(runs[impl])
        row[f"{key}_images_per_s"] = runs[impl]
        row[f"{key}_median_images_per_s"] = median
        row[f"{key}_flops_per_step"] = flops[impl]
        if peak:
            row[f"{key}_peak_fraction"] = flops[impl] * median / batch / peak
    row |= ratio_summary(runs["glowapp"], runs["rosinality"])
    if PLAIN in runs:
        plain = ratio_summary(runs[PLAIN], runs["rosinality"])
        row["plain_ratio_median"] = plain["ratio_median"]
        row["plain_ratios"] = plain["ratios"]
    return row


def print_table(rows: list[dict[str, Any]], rounds: int) -> None:
    """The printed table: medians of each implementation and the ratio's median and spread
    (and glowapp's without the folded path, with ``--plain``)."""
    table = Table(
        title=f"glowapp ÷ rosinality/glow-pytorch, images/s: median of {rounds} alternated rounds"
    )
    columns = ("cfg", "mode", "allocator", "rosinality", "glowapp", "ratio", "min–max", "IQR")
    plain = any("plain_ratio_median" in r for r in rows)
    for col in (*columns, "plain ratio") if plain else columns:
        table.add_column(col, justify="right")
    for r in rows:
        cells = [
            r["config"],
            r["mode"],
            r["allocator"],
            f"{r['rosinality_median_images_per_s']:,.1f}",
            f"{r['glowapp_median_images_per_s']:,.1f}",
            f"×{r['ratio_median']:.2f}",
            f"×{r['ratio_min']:.2f}–{r['ratio_max']:.2f}",
            f"{r['ratio_iqr']:.2f}",
        ]
        if plain:
            cells.append(f"×{r['plain_ratio_median']:.2f}" if "plain_ratio_median" in r else "")
        table.add_row(*cells)
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
        "--plain",
        action="store_true",
        help="also time glowapp's eval and sample with the folded inference path off",
    )
    p.add_argument(
        "--peak",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the machine's dense peak first, for the FLOP/s fractions (default: on)",
    )
    p.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "compare_reference.json"
    )
    p.add_argument("--child", choices=(*IMPLS, PLAIN), help=argparse.SUPPRESS)
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
    setup_process(args.threads)
    peak = peak_flops(args.threads, args.quick) if args.peak else None
    rows = []
    for config in args.configs:
        for mode in args.modes:
            for allocator in args.allocators:
                best = peak["best_flops_per_s"] if peak else None
                rows.append(compare_cell(args, config, mode, allocator, best))
                r = rows[-1]
                log(
                    f"{config} {mode} {allocator}: ×{r['ratio_median']:.2f} "
                    f"(rounds: {', '.join(f'{x:.2f}' for x in r['ratios'])})"
                )
    report = {
        "schema": 3,
        "args": {k: str(v) for k, v in vars(args).items() if k != "child"},
        "quick": args.quick,
        "machine": machine_info(args.threads),
        "peak": peak,
        "order": "per round: "
        + ", ".join((*IMPLS, PLAIN) if args.plain else IMPLS)
        + "; each measurement a fresh process",
        "glowapp": "train: bench.workload.Workload (GlowModule); eval: ImageFlow.bits_per_dim "
        "under inference_mode; sample: glowapp.generate.sample_grid",
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
