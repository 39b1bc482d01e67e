#!/usr/bin/env python
"""Throughput of glowapp against rosinality/glow-pytorch, measured side by side in one run.

The reference's code is not part of glowapp: pass a checkout's ``model.py``
(``--rosinality-model``; get it with ``git clone https://github.com/rosinality/glow-pytorch``).
Its ``Glow(in_channel, n_flow=K, n_block=L)`` is built with affine coupling and the LU 1×1
convolution, with the coupling width set to the config's ``hidden``, and timed the way its
``train.py`` runs it: inputs ``x/256 − ½ + U(0, 1/256)``, its loss (bits/dim), ``zero_grad``,
backward, plain ``torch.optim.Adam``; evaluation is the forward pass under ``no_grad``;
sampling is ``reverse`` of temperature-0.7 latents. glowapp is timed by ``bench/benchmark.py``'s
``Runner`` (its defaults, as ``glowapp fit`` runs them).

Each measurement is a fresh process (``--threads`` threads, median of ``--repeats`` steps after
``--warmup``). Every (config, mode, allocator) cell runs both implementations back to back,
alternating which goes first, ``--rounds`` times; the reported ratio is the median of the
per-round ratios, so slow drifts of a shared machine cancel. ``--allocators`` chooses glibc's
default allocator, the tuned one (:func:`glowapp.runtime.tune_malloc`, which the ``glowapp``
command applies; here it is given to both implementations), or both.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
IMPLS = ("rosinality", "glowapp")
ALLOCATORS = ("default", "tuned")
MODES = ("train", "eval", "sample")
TEMPERATURE = 0.7
LR = 1e-4


def load_reference(path: Path, hidden: int) -> Any:
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


def reference_steps(model_path: Path, cfg: Any, images: Any) -> dict[str, Any]:
    """The reference's train / eval / sample computations for ``cfg`` (see the module docstring)."""
    import torch

    module = load_reference(model_path, cfg.hidden)
    torch.manual_seed(0)
    model = module.Glow(cfg.channels, cfg.steps, cfg.levels, affine=True, conv_lu=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    n_bins, n_pixel = 2.0**8, cfg.num_dims

    def inputs() -> Any:
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

    def evaluate() -> None:
        model.eval()
        with torch.no_grad():
            model(inputs())

    def sample() -> None:
        model.eval()
        with torch.no_grad():
            z = [TEMPERATURE * torch.randn(cfg.batch, *s) for s in shapes]
            model.reverse(z).clamp(-0.5, 0.5)

    return {"train": train, "eval": evaluate, "sample": sample}


def child(args: argparse.Namespace) -> None:
    """One fresh process: one implementation, one config, one mode; prints a JSON line."""
    if args.allocator == "tuned":
        from glowapp.runtime import tune_malloc

        if not tune_malloc():
            raise SystemExit("the tuned allocator needs Linux with glibc")
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(BENCH))
    import benchmark

    cfg = (benchmark.QUICK_CONFIGS if args.quick else benchmark.CONFIGS)[args.config]
    images = benchmark.make_images(cfg)
    if args.impl == "glowapp":
        model, pre = benchmark.build(cfg)
        runner = benchmark.Runner(cfg, model, pre, images)
        runner.init_actnorm()
        step = lambda: runner.step(args.mode)  # noqa: E731
    else:
        step = reference_steps(args.rosinality_model, cfg, images)[args.mode]
    times, _ = benchmark.timed(step, args.warmup, args.repeats)
    print(json.dumps({"images_per_s": cfg.batch / statistics.median(times)}))


def measure(args: argparse.Namespace, impl: str, config: str, mode: str, allocator: str) -> float:
    cmd = [sys.executable, __file__, "--child", impl, "--configs", config, "--modes", mode]
    cmd += ["--allocators", allocator, "--threads", str(args.threads)]
    cmd += ["--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    cmd += ["--rosinality-model", str(args.rosinality_model)] + (["--quick"] if args.quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{impl} {config} {mode} ({allocator} allocator) failed:\n{out.stderr}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rosinality-model", type=Path, required=True, help="path of its model.py")
    p.add_argument("--configs", nargs="+", choices=("S", "C"), default=["S", "C"])
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--allocators", nargs="+", choices=ALLOCATORS, default=list(ALLOCATORS))
    p.add_argument("--rounds", type=int, default=2, help="repetitions of every cell (default 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="tiny configs: a smoke run, no measurement")
    p.add_argument("--out", type=Path, default=BENCH / "results" / "compare_reference.json")
    p.add_argument("--child", choices=IMPLS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.rosinality_model.is_file():
        p.error(f"--rosinality-model: {args.rosinality_model}: no such file")
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
                runs: dict[str, list[float]] = {impl: [] for impl in IMPLS}
                for r in range(args.rounds):
                    for impl in IMPLS if r % 2 == 0 else IMPLS[::-1]:
                        runs[impl].append(measure(args, impl, config, mode, allocator))
                ratios = [
                    g / ref for g, ref in zip(runs["glowapp"], runs["rosinality"], strict=True)
                ]
                rows.append(
                    {
                        "config": config,
                        "mode": mode,
                        "allocator": allocator,
                        "rosinality_images_per_s": runs["rosinality"],
                        "glowapp_images_per_s": runs["glowapp"],
                        "ratio_median": statistics.median(ratios),
                    }
                )
                print(
                    f"{config} {mode:6s} {allocator:7s} allocator: rosinality "
                    f"{statistics.median(runs['rosinality']):8.1f} img/s, glowapp "
                    f"{statistics.median(runs['glowapp']):8.1f} img/s, ratio ×{rows[-1]['ratio_median']:.2f}"
                    f" (per round {', '.join(f'{x:.2f}' for x in ratios)})",
                    flush=True,
                )
    report = {
        "args": {k: str(v) for k, v in vars(args).items() if k != "child"},
        "quick": args.quick,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
