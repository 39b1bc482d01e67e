"""Peak memory of the train / eval / sample steps, each in a fresh process, and its growth with depth.

Memory processes run with allocators that hand freed memory back at once, so that the RSS follows
the live tensors: glibc mmaps every block from 128 KiB up (a fixed threshold: glibc otherwise
raises it as blocks are freed) and MKL's own buffer cache is off. With the tuned allocator the
RSS is the heap's high-water mark instead, which depends on fragmentation: the same K=32
measurement then varied by ±25% from run to run; this way it repeats to the MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import math
import os
import resource
from dataclasses import asdict, replace
from typing import Any

from bench.configs import MODES, Config, configs
from bench.timing import log, run_fresh, setup_process
from bench.workload import workload

EXACT_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MKL_DISABLE_FAST_MM": "1"}


def mib(nbytes: float) -> float:
    return nbytes / 2**20


def proc_status_bytes(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` (peak RSS of this process image) from ``/proc/self/status``, bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def malloc_trim() -> None:
    """Hand glibc's free heap memory back to the OS (so a later peak is not hidden by it)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def ru_maxrss_bytes() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux), bytes. Caveat: Linux carries the
    parent's peak RSS into a spawned child's ``ru_maxrss``, so :func:`memory_child` uses ``VmHWM``."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Fresh process: build, note the RSS, run ``spec['iterations']`` steps, report the peak.

    ``baseline``: RSS once the module, its optimizer (no state yet) and the batch exist, ActNorm
    initialised. The peak is ``VmHWM`` reset to the baseline just before the steps, so
    ``above_baseline`` = activations + temporaries (+ gradients and Adam moments in training).
    ``peak_rss`` is the process's overall peak (imports included).
    """
    setup_process(spec["threads"], tuned_malloc=False)
    work = workload(Config(**spec["config"]), memory_saving=spec["memory_saving"])
    startup_peak = proc_status_bytes("VmHWM")
    malloc_trim()
    baseline = proc_status_bytes("VmRSS")
    reset_ok = reset_peak_rss()
    for _ in range(spec["iterations"]):
        work.step(spec["mode"])
    hwm = proc_status_bytes("VmHWM")
    # Without the reset, VmHWM is the peak since exec, which may be the import's.
    above = max(hwm - baseline, 0) if reset_ok else max(hwm - max(baseline, startup_peak), 0)
    return {
        "peak_rss_bytes": max(hwm, startup_peak),
        "baseline_rss_bytes": baseline,
        "above_baseline_bytes": above,
        "startup_peak_rss_bytes": startup_peak,
        "ru_maxrss_bytes": ru_maxrss_bytes(),
        "peak_reset": reset_ok,
        "iterations": spec["iterations"],
        "params": sum(p.numel() for p in work.module.parameters()),
    }


def _spec(cfg: Config, mode: str, saving: bool, args: argparse.Namespace, key: tuple) -> dict:
    return {
        "config": asdict(cfg),
        "mode": mode,
        "memory_saving": saving,
        "threads": args.threads,
        "iterations": args.memory_iterations,
        "key": key,
    }


def memory_section(
    cfgs: list[Config], args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Peak RSS per config and mode, and training peak vs depth with/without memory saving."""
    specs = [_spec(c, m, False, args, ("config", c.name, m)) for c in cfgs for m in MODES]
    depth_base = configs(args.quick)["S"]
    for k in args.memory_depths:
        for saving in (False, True):
            cfg = replace(depth_base, steps=k)
            specs.append(_spec(cfg, "train", saving, args, ("depth", k, saving)))
    log(f"memory: {len(specs)} fresh processes, {args.memory_jobs} at a time ...")
    # Each spec resets the peak (VmHWM) before its steps, so --quick may share processes.
    per_process = math.ceil(len(specs) / 2) if args.quick else 1
    saved = {k: os.environ.get(k) for k in EXACT_MEMORY_ENV}
    os.environ.update(EXACT_MEMORY_ENV)  # spawned children inherit it from their start
    try:
        results = run_fresh(memory_child, specs, args.memory_jobs, per_process)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    per_config: dict[str, dict[str, Any]] = {}
    depth_rows: dict[int, dict[str, Any]] = {}
    for spec, r in zip(specs, results, strict=True):
        kind, a, b = spec["key"]
        if kind == "config":
            per_config.setdefault(a, {})[b] = r
        else:
            depth_rows.setdefault(a, {"steps": a})["memory_saving" if b else "standard"] = r
    rows = []
    for k in args.memory_depths:
        row = depth_rows[k]
        std, sav = row["standard"], row["memory_saving"]
        row["peak_ratio"] = sav["peak_rss_bytes"] / std["peak_rss_bytes"]
        row["above_baseline_ratio"] = sav["above_baseline_bytes"] / max(
            std["above_baseline_bytes"], 1
        )
        row["params"] = std["params"]
        # Gradients + Adam's two moments: 3 × parameter bytes of the "above baseline" figure.
        row["param_state_bytes"] = 3 * 4 * std["params"]
        rows.append(row)
    return per_config, {"config": asdict(depth_base), "rows": rows}
