"""Timing on a shared CPU: timed repeats, their summary, a contention meter, fresh processes.

Used by :mod:`bench.benchmark` and :mod:`bench.compare_reference` alike, so both measure the
same way.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from glowapp.runtime import tune_malloc


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the tables and the children's JSON lines)."""
    print(msg, file=sys.stderr, flush=True)


# ---- machine information -------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else what :mod:`platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The CPU flags that decide which kernels oneDNN can use, reported with every figure.
VECTOR_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_bf16",
)


def cpu_flags() -> list[str]:
    """The :data:`VECTOR_FLAGS` this CPU has (``lscpu``'s flags, read from ``/proc/cpuinfo``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in VECTOR_FLAGS if flag in present]
    except OSError:
        pass
    return []


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages (``-1`` each where unavailable)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return [-1.0, -1.0, -1.0]


def machine_info(threads: int) -> dict[str, Any]:
    """Versions, CPU and thread settings of this process, for the JSON reports."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "torch_num_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "dtype": "float32",
    }


# ---- contention --------------------------------------------------------------------------
def _cpu_ticks() -> tuple[int, int, int]:
    """(all CPUs' busy ticks, all CPUs' total ticks, this process's ticks, all threads)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    total = sum(fields)
    busy = total - fields[3] - fields[4]  # minus idle, iowait
    with open("/proc/self/stat") as f:
        stat = f.read().rsplit(")", 1)[1].split()
    own = int(stat[11]) + int(stat[12])  # utime, stime (fields 14, 15)
    return busy, total, own


class CpuMonitor:
    """How many CPU cores *other* processes kept busy while the block ran (a contention meter).

    From ``/proc/stat`` minus this process's own ticks; ``-1`` where ``/proc`` is unavailable,
    0 for a block shorter than one clock tick.
    On a 2-core machine even one busy foreign process matters: with 2 OpenMP threads every
    parallel region waits for the thread that shares a core with it.
    """

    def __enter__(self) -> CpuMonitor:
        self.other_cores = -1.0
        try:
            self._start: tuple[int, int, int] | None = _cpu_ticks()
        except (OSError, ValueError, IndexError):
            self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._start is None:
            return
        busy, total, own = (b - a for a, b in zip(self._start, _cpu_ticks(), strict=True))
        # A block shorter than one clock tick (10 ms) sees no ticks at all: nothing measured busy.
        self.other_cores = max(busy - own, 0) / total * (os.cpu_count() or 1) if total > 0 else 0.0


def wait_until_idle(
    max_wait_s: float, threshold_cores: float = 0.25, window_s: float = 1.0
) -> float:
    """Wait (up to ``max_wait_s``) until other processes use < ``threshold_cores``; seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        with CpuMonitor() as mon:
            time.sleep(window_s)
        if 0 <= mon.other_cores < threshold_cores:
            break
    return time.perf_counter() - t0


# ---- timing ------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], warmup: int, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process-CPU seconds of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def summarize(times: list[float], cpu_times: list[float], batch: int) -> dict[str, Any]:
    """``batch / median(times)`` images/s and the spread of the step times (seconds)."""
    med = statistics.median(times)
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [med, med, med]
    return {
        "images_per_s": batch / med,
        "median_s": med,
        "min_s": min(times),
        "max_s": max(times),
        "iqr_s": q[2] - q[0],
        "cpu_s_median": statistics.median(cpu_times),
        "repeats": len(times),
        "times_s": times,
    }


def measure_throughput(
    step: Callable[[], Any],
    batch: int,
    warmup: int,
    repeats: int,
    wait_idle_s: float = 0.0,
    retries: int = 0,
    busy_threshold: float = 0.25,
) -> dict[str, Any]:
    """Median throughput of ``step`` (``batch`` images per call), as :func:`summarize` reports it.

    On a shared machine: optionally wait (``wait_idle_s``) for other processes to leave the CPUs
    first, and re-measure up to ``retries`` times when they kept more than ``busy_threshold``
    cores busy during the measurement, keeping the least disturbed attempt. Every result says how
    many cores other processes used (``other_processes_cpu_cores``).
    """
    best: dict[str, Any] | None = None
    attempts = 0
    for attempt in range(retries + 1):
        attempts += 1
        waited = wait_until_idle(wait_idle_s) if wait_idle_s > 0 else 0.0
        load_before = load_average()
        with CpuMonitor() as mon:
            wall, cpu = timed(step, warmup if attempt == 0 else 0, repeats)
        res = summarize(wall, cpu, batch)
        res["load_average"] = [load_before, load_average()]
        res["other_processes_cpu_cores"] = mon.other_cores
        res["waited_for_idle_s"] = waited
        if best is None or res["other_processes_cpu_cores"] < best["other_processes_cpu_cores"]:
            best = res
        if 0 <= res["other_processes_cpu_cores"] < busy_threshold:
            break
    assert best is not None
    best["attempts"] = attempts
    return best


def matmul_flops(n: int, threads: int, repeats: int) -> dict[str, Any]:
    """float32 ``n×n @ n×n`` FLOP/s (median): the machine's practical dense peak in this run."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    out = torch.empty(n, n)
    with CpuMonitor() as mon:
        wall, _ = timed(lambda: torch.mm(a, b, out=out), warmup=2, repeats=repeats)
    med = statistics.median(wall)
    return {
        "n": n,
        "median_s": med,
        "flops_per_s": 2.0 * n**3 / med,
        "best_flops_per_s": 2.0 * n**3 / min(wall),
        "other_processes_cpu_cores": mon.other_cores,
        "times_s": wall,
    }


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (convolutions and matmuls; elementwise ops are not counted)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# ---- fresh processes -----------------------------------------------------------------------
def setup_process(threads: int, tuned_malloc: bool = True) -> bool:
    """A fresh benchmark process: glowapp's allocator tuning (as the ``glowapp`` command applies
    it) unless ``tuned_malloc`` is False, ``threads`` intra-op threads, Lightning's notices off.
    Returns whether the allocator is tuned."""
    tuned = tuned_malloc and tune_malloc()
    torch.set_num_threads(threads)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*self\.log\(\)")  # barebones: logging off
    return tuned


def _run_group(
    job: tuple[Callable[[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    fn, specs = job
    return [fn(spec) for spec in specs]


def run_fresh(
    fn: Callable[[dict[str, Any]], dict[str, Any]],
    specs: list[dict[str, Any]],
    jobs: int,
    per_process: int = 1,
) -> list[dict[str, Any]]:
    """``fn(spec)`` for each spec in fresh ``spawn``-ed processes (``per_process`` specs each,
    one after the other), ``jobs`` processes at a time.

    A fresh process per measurement keeps results independent of what ran before: glibc's malloc
    returns big freed blocks to the OS and page-faults them back in on the next allocation, which
    is expensive on this kind of VM, and how often that happens depends on the heap's history.
    (``--quick`` packs several specs per process to be fast; it measures nothing anyway.)
    """
    ctx = mp.get_context("spawn")
    groups = [specs[i : i + per_process] for i in range(0, len(specs), max(per_process, 1))]
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=max(jobs, 1), mp_context=ctx, max_tasks_per_child=1
    ) as pool:
        return [r for group in pool.map(_run_group, [(fn, g) for g in groups]) for r in group]
