"""Performance benchmark of glowapp's Glow on the CPU: throughput, memory, FLOPs, options.

Two fixed float32 configurations (``--configs S C``, see :mod:`bench.workload`):

* ``S``: 1×32×32 input, Glow L=3, K=8, hidden 128, affine coupling, LU 1×1 conv, batch 32;
* ``C``: 3×32×32 input, Glow L=3, K=16, hidden 256, affine coupling, LU 1×1 conv, batch 16.

Each is a real :class:`~glowapp.GlowModule` driven through its own methods
(:class:`bench.workload.Workload`): training is ``glowapp fit``'s optimizer step (the module's
``configure_optimizers``, ``training_step``, ``backward``, ``optimizer_step``, LR schedule),
evaluation is ``glowapp test``'s ``test_step``, sampling is ``glowapp sample``'s
:func:`glowapp.generate.sample_grid` at T = 0.7. Measured (median over ``--repeats`` timed steps
after ``--warmup`` untimed ones, each mode in a fresh process): images/s, also with
``memory_saving=True``; peak memory (:mod:`bench.memory`); parameters and FLOPs per image, and the
achieved eval FLOP/s against a float32 matmul's in the same run; the bits/dim agreement of every
option with the plain NCHW model (:mod:`bench.equivalence`); with ``--profile`` the top ops.

The headline figures are glowapp's defaults, as ``glowapp fit`` runs them: channels-last
activations and glibc's allocator tuned by :func:`glowapp.runtime.tune_malloc`. The ablations
time each default turned off in the same run (``nchw``, ``glibc_malloc``).

Run ``python -m bench.benchmark --help`` from the repository root; ``bench/README.md`` says what
each column means.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.configs import MODES, TEMPERATURE, Config, configs
from bench.equivalence import equivalence
from bench.memory import EXACT_MEMORY_ENV, memory_section
from bench.profiling import profile_child
from bench.report import ABLATIONS, derive, print_report
from bench.timing import (
    count_flops,
    load_average,
    log,
    machine_info,
    matmul_flops,
    measure_throughput,
    run_fresh,
    setup_process,
)
from bench.workload import workload

SCHEMA_VERSION = 2

VARIANTS = {  # name -> (spec options, modes timed); "plain" = glowapp's defaults
    "plain": ({}, MODES),
    "memory_saving": ({"memory_saving": True}, ("train",)),
    "nchw": ({"channels_last": False}, MODES),
    "glibc_malloc": ({"tune_malloc": False}, MODES),
    "compile": ({"compile": True}, MODES),
}


def timing_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Fresh process: build one variant, time each mode of ``spec['modes']`` (in that order)."""
    if spec.get("compile"):
        import torch._inductor.config

        torch._inductor.config.force_disable_caches = True  # time a cold compile
    tuned = setup_process(spec["threads"], tuned_malloc=spec.get("tune_malloc", True))
    cfg = Config(**spec["config"])
    out: dict[str, Any] = {"malloc_tuned": tuned}
    try:
        work = workload(
            cfg,
            memory_saving=spec.get("memory_saving", False),
            channels_last=spec.get("channels_last", True),
            compile=spec.get("compile", False),
        )
        for mode in spec["modes"]:
            first = None
            if spec.get("compile"):
                t0 = time.perf_counter()
                work.step(mode)  # compiles (training: forward and backward graphs)
                first = time.perf_counter() - t0
            res = measure_throughput(
                lambda mode=mode: work.step(mode),
                cfg.batch,
                spec["warmup"],
                spec["repeats"],
                spec["wait_idle"],
                spec["retries"],
            )
            if first is not None:
                res["first_call_s"] = first
                res["compile_s"] = max(first - res["median_s"], 0.0)
            if mode == "train":
                res["loss_bpd_after"] = work.train_step()
            out[mode] = res
        if spec.get("compile"):
            import torch._dynamo

            counters = torch._dynamo.utils.counters
            out["graph_breaks"] = int(sum(counters["graph_break"].values()))
            out["unique_graphs"] = int(counters["stats"]["unique_graphs"])
    except Exception as exc:  # noqa: BLE001 - e.g. torch.compile failing: report it, go on
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc(limit=8)
    return out


def timing_specs(cfgs: list[Config], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One spec per (config, variant, mode): each is timed in its own fresh process."""
    variants = ["plain", "memory_saving"] + ([] if args.no_ablations else list(ABLATIONS))
    variants += ["compile"] if args.compile else []
    common = {k: getattr(args, k) for k in ("threads", "warmup", "repeats", "wait_idle", "retries")}
    return [
        {"config": asdict(cfg), "variant": v, "modes": [m], **VARIANTS[v][0], **common}
        for cfg in cfgs
        for v in variants
        for m in VARIANTS[v][1]
    ]


def collect_timings(cfgs: list[Config], args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Time every spec of :func:`timing_specs` and file the results under ``report['configs']``."""
    specs = timing_specs(cfgs, args)
    log(f"timing: {len(specs)} fresh processes, {args.timing_jobs} at a time ...")
    per_process = math.ceil(len(specs) / len(cfgs)) if args.quick else 1
    results = run_fresh(timing_child, specs, args.timing_jobs, per_process)
    for spec, out in zip(specs, results, strict=True):
        r = report["configs"][spec["config"]["name"]]
        variant = spec["variant"]
        option = ABLATIONS.get(variant, variant)
        if "error" in out:
            r.setdefault("errors", {})[variant] = out["error"]
            if variant not in ("plain", "memory_saving"):
                r.setdefault(option, {})["error"] = out["error"]
                r[option]["traceback"] = out.get("traceback", "")
        elif variant == "plain":
            r["malloc_tuned"] = out["malloc_tuned"]
            r.update({mode: out[mode] for mode in spec["modes"]})
        elif variant == "memory_saving":
            r["train_memory_saving"] = out["train"]
        elif variant == "compile":
            graphs = {k: out.get(k) for k in ("graph_breaks", "unique_graphs")}
            r.setdefault("compile", {}).update({m: out[m] | graphs for m in spec["modes"]})
        else:
            r.setdefault(option, {}).update(out)


def static_info(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Parameter count, FLOPs per image and the options' bits/dim agreement (in this process)."""
    res: dict[str, Any] = {"config": asdict(cfg)}
    work = workload(cfg)
    res["params"] = sum(p.numel() for p in work.module.parameters())
    work.eval_step()  # fills the 1×1 conv caches: count the steady state
    res["fwd_flops_per_image"] = count_flops(work.eval_step) / cfg.batch
    res["sample_flops_per_image"] = count_flops(work.sample_step) / cfg.batch
    res["train_flops_per_image"] = count_flops(work.train_step) / cfg.batch
    log(f"[{cfg.name}] bits/dim equivalence of the options ...")
    options = ["memory_saving", "channels_last"] + (["compile"] if args.compile else [])
    res["equivalence"] = equivalence(cfg, options)
    return res


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.benchmark",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = p.add_argument
    add("--configs", nargs="+", default=["S", "C"], choices=("S", "C"), help="configurations")
    add("--threads", type=int, default=2, help="torch.set_num_threads in every process")
    add("--repeats", type=int, help="timed repeats per measurement (default 10, --quick 2)")
    add("--warmup", type=int, help="untimed warm-up repeats (default 3, --quick 1)")
    add("--out", type=Path, default=Path("bench/results/benchmark.json"), help="JSON output")
    add("--quick", action="store_true", help="tiny sizes, few repeats: a smoke run, no measurement")
    add("--memory-depths", type=int, nargs="+", help="K of the memory sweep (8 16 32; --quick 1 2)")
    add("--memory-iterations", type=int, default=2, help="steps run in each memory process")
    add("--memory-jobs", type=int, default=1, help="memory processes at once (RSS is per process)")
    add("--matmul-size", type=int, help="n of the float32 n×n matmul (2048; --quick 256)")
    add("--compile", action="store_true", help="also time torch.compile (compile time, bits/dim)")
    add("--no-ablations", action="store_true", help="do not time the defaults switched off")
    add("--profile", action="store_true", help="torch.profiler: top ops per config and mode")
    add("--profile-steps", type=int, default=3, help="steps profiled per mode")
    add("--profile-top", type=int, default=15, help="ops listed per profile")
    add("--wait-idle", type=float, default=0.0, help="wait up to S s for idle CPUs before a timing")
    add("--retries", type=int, default=0, help="re-time disturbed measurements up to N times")
    add("--timing-jobs", type=int, default=1, help="timing processes at once (keep 1 to measure)")
    add("--no-table", action="store_true", help="skip the printed tables (JSON only)")
    args = p.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats if args.repeats is not None else (2 if quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    args.memory_depths = args.memory_depths or ([1, 2] if quick else [8, 16, 32])
    args.matmul_size = args.matmul_size or (256 if quick else 2048)
    if quick:  # --quick numbers are not measurements: overlap the tiny jobs
        args.memory_jobs, args.timing_jobs = max(args.memory_jobs, 2), max(args.timing_jobs, 2)
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_process(args.threads)
    cfgs = [configs(args.quick)[name] for name in args.configs]
    started = time.time()
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "quick": args.quick,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine_info(args.threads),
        "malloc_tuning": "mallopt: mmap threshold 32 MiB, trim threshold 1 GiB (glowapp.runtime)",
        "memory_allocator": "memory processes: "
        + ", ".join(f"{k}={v}" for k, v in EXACT_MEMORY_ENV.items())
        + ", glowapp's tuning off (the RSS follows the live tensors)",
        "workload": "glowapp.GlowModule's own steps: configure_optimizers + training_step + "
        "backward + optimizer_step + LR schedule (fit), test_step (test), "
        "glowapp.generate.sample_grid (sample)",
        "load_average_start": load_average(),
        "started_unix": started,
        "temperature": TEMPERATURE,
        "reference_note": "reference figures: best of other implementations (rosinality/glow-pytorch, "
        "y0ast/Glow-PyTorch) on a 2-thread CPU of this kind, as given with the task; not re-measured here",
    }
    matmul_repeats = max(args.repeats, 5)
    log(f"matmul {args.matmul_size}² float32 ...")
    report["matmul"] = matmul_flops(args.matmul_size, args.threads, matmul_repeats)
    report["configs"] = {}
    for cfg in cfgs:
        log(f"[{cfg.name}] parameters and FLOPs ...")
        report["configs"][cfg.name] = static_info(cfg, args)
    collect_timings(cfgs, args, report)
    report["matmul_end"] = matmul_flops(args.matmul_size, args.threads, matmul_repeats)
    # The less disturbed of the two matmul measurements is the reference peak.
    peak = max(report["matmul"]["flops_per_s"], report["matmul_end"]["flops_per_s"])
    report["matmul_reference_flops_per_s"] = peak
    for cfg in cfgs:
        derive(cfg.name, report["configs"][cfg.name], peak)

    per_config, depth = memory_section(cfgs, args)
    for name, mem in per_config.items():
        report["configs"][name]["memory"] = mem
    report["memory_depth"] = depth

    if args.profile:
        log("profiling (a fresh process per config) ...")
        specs = [
            {"config": asdict(c), "threads": args.threads}
            | {"steps": args.profile_steps, "top": args.profile_top}
            for c in cfgs
        ]
        profiles = run_fresh(profile_child, specs, 1)
        report["profile"] = {c.name: prof for c, prof in zip(cfgs, profiles, strict=True)}
    report["load_average_end"] = load_average()
    report["wall_s"] = time.time() - started

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    if not args.no_table:
        print_report(report)
    log(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
