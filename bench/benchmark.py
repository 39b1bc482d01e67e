#!/usr/bin/env python
"""Performance benchmark of glowapp's Glow on the CPU: throughput, memory, FLOPs, options.

Two fixed float32 configurations (``--configs S C``):

* ``S``: 1×32×32 input, Glow L=3, K=8, hidden 128, affine coupling, LU 1×1 conv, batch 32;
* ``C``: 3×32×32 input, Glow L=3, K=16, hidden 256, affine coupling, LU 1×1 conv, batch 16.

For each it measures (median over ``--repeats`` timed repeats after ``--warmup`` untimed ones):

* training throughput: the computation of ``GlowModule``'s training step without Lightning —
  dequantise uint8 images → preprocess (``x = y − ½``) → ``log_prob`` → bits/dim → mean →
  backward → (fused) Adam step — in images/s; also with ``memory_saving=True``;
* log-likelihood evaluation throughput (``eval()``, ``no_grad``, dequantise → bits/dim);
* sampling throughput at temperature 0.7 (``eval()``, ``no_grad``, latents → decode → images);
* peak memory: the peak RSS (``ru_maxrss``) of a fresh spawned process per measurement, and that
  peak minus the RSS after model (and optimizer) construction;
* parameter count, forward FLOPs per image (``FlopCounterMode`` on the log-likelihood forward),
  and the achieved eval FLOP/s as a fraction of a float32 matmul's FLOP/s in the same run;
* bits/dim agreement of every optimisation option measured (memory-saving backprop,
  channels-last, ``torch.compile``) with the plain NCHW model on a fixed batch.

The headline figures are glowapp's defaults, as ``glowapp fit`` runs them: channels-last
activations (``GlowModule(channels_last=True)``) and glibc's allocator tuned by
:func:`glowapp.runtime.tune_malloc`. The ablations time each default turned off in the same run
(``nchw``, ``glibc_malloc``), so its speed-up is a ratio of two measurements taken side by side.

Plus peak training memory against depth (``--memory-depths``, config S shapes) with and without
memory-saving backprop, and with ``--profile`` the top ops by self CPU time.

Run ``python bench/benchmark.py --help``; see ``bench/README.md`` for what each column means.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from glowapp.flows.preprocess import Preprocessor
from glowapp.models import Glow
from glowapp.optim import make_adam
from glowapp.runtime import tune_malloc

SCHEMA_VERSION = 1
TEMPERATURE = 0.7
N_BITS = 8
LR = 1e-4


# ---- configurations, references, targets --------------------------------------------------
@dataclass(frozen=True)
class Config:
    name: str
    channels: int
    size: int
    levels: int
    steps: int
    hidden: int
    batch: int
    coupling: str = "affine"
    permutation: str = "lu"

    @property
    def num_dims(self) -> int:
        return self.channels * self.size * self.size


CONFIGS = {
    "S": Config("S", channels=1, size=32, levels=3, steps=8, hidden=128, batch=32),
    "C": Config("C", channels=3, size=32, levels=3, steps=16, hidden=256, batch=16),
}
# --quick: same structure, tiny sizes (a smoke test of the whole pipeline, not a measurement).
QUICK_CONFIGS = {
    "S": Config("S", channels=1, size=16, levels=2, steps=2, hidden=16, batch=4),
    "C": Config("C", channels=3, size=16, levels=2, steps=2, hidden=24, batch=4),
}

# Best figure of other implementations on a 2-thread CPU of this kind (given with the task, not
# re-measured here): rosinality/glow-pytorch and y0ast/Glow-PyTorch; images/s.
REFERENCE = {
    "S": {"train": 184.0, "eval": 729.0, "sample": 792.0},
    "C": {"train": 36.1, "eval": 136.0, "sample": 123.0},
}
TARGET = {
    "S": {"train": 240.0, "eval": 1190.0, "sample": 1190.0},
    "C": {"train": 47.0, "eval": 205.0, "sample": 185.0},
}
MODES = ("train", "eval", "sample")


# ---- machine information -------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return [-1.0, -1.0, -1.0]


def machine_info(threads: int) -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "torch_num_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "dtype": "float32",
    }


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

    From ``/proc/stat`` minus this process's own ticks; ``-1`` where ``/proc`` is unavailable.
    On a 2-core machine even one busy foreign process matters: with 2 OpenMP threads every
    parallel region waits for the thread that shares a core with it.
    """

    def __enter__(self) -> CpuMonitor:
        self.other_cores = -1.0
        try:
            self._start = _cpu_ticks()
        except (OSError, ValueError, IndexError):
            self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._start is None:
            return
        busy, total, own = (b - a for a, b in zip(self._start, _cpu_ticks(), strict=True))
        if total > 0:
            self.other_cores = max(busy - own, 0) / total * (os.cpu_count() or 1)


def wait_until_idle(
    max_wait_s: float, threshold_cores: float = 0.25, window_s: float = 1.0
) -> float:
    """Wait (up to ``max_wait_s``) until other processes use < ``threshold_cores``; returns seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        with CpuMonitor() as mon:
            time.sleep(window_s)
        if 0 <= mon.other_cores < threshold_cores:
            break
    return time.perf_counter() - t0


def proc_status_bytes(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` (peak RSS of this process image) from ``/proc/self/status``."""
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
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def ru_maxrss_bytes() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux). Caveat: Linux carries the parent's
    peak RSS into a forked/exec'd child's ``ru_maxrss``, so :func:`memory_child` uses ``VmHWM``."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---- the computation users run ---------------------------------------------------------------
def build(
    cfg: Config, memory_saving: bool = False, channels_last: bool = True, seed: int = 0
) -> tuple[Glow, Preprocessor]:
    """The Glow of ``cfg`` as ``GlowModule`` builds it (channels-last unless told otherwise)."""
    torch.manual_seed(seed)
    model = Glow(
        cfg.channels,
        cfg.levels,
        cfg.steps,
        cfg.hidden,
        coupling=cfg.coupling,
        permutation=cfg.permutation,
        image_size=cfg.size,
        memory_saving=memory_saving,
    )
    model.use_channels_last(channels_last)
    return model, Preprocessor(n_bits=N_BITS, logit_alpha=None)


def make_images(cfg: Config, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (cfg.batch, cfg.channels, cfg.size, cfg.size)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


class Runner:
    """The train / eval / sample computations of one model, optionally compiled.

    ``bits_per_dim`` is ``GlowModule.bits_per_dim``: dequantise (eager: it draws from a
    generator) → ``preprocess`` + ``flow.log_prob`` + bits/dim (the part ``torch.compile`` sees).
    """

    def __init__(
        self,
        cfg: Config,
        model: Glow,
        pre: Preprocessor,
        images: torch.Tensor,
        compile: bool = False,
    ) -> None:
        self.cfg, self.model, self.pre, self.images = cfg, model, pre, images
        self.generator = torch.Generator().manual_seed(1)
        self.optimizer: torch.optim.Optimizer | None = None
        num_dims = cfg.num_dims

        def score(y: torch.Tensor) -> torch.Tensor:
            x, logdet_pre = pre(y)
            return pre.bits_per_dim(model.log_prob(x), logdet_pre, num_dims)

        self._score: Callable[[torch.Tensor], torch.Tensor] = score
        self._decode: Callable[[list[torch.Tensor]], torch.Tensor] = model.decode
        if compile:
            self._score = torch.compile(score)
            self._decode = torch.compile(model.decode)

    def bits_per_dim(self, images: torch.Tensor | None = None, noise: bool = True) -> torch.Tensor:
        images = self.images if images is None else images
        y = self.pre.dequantize(images, noise=noise, generator=self.generator)
        return self._score(y)

    def init_actnorm(self) -> None:
        """ActNorm's data-dependent initialisation (the first training forward does it)."""
        self.model.train()
        with torch.no_grad():
            self.bits_per_dim()

    def train_step(self) -> float:
        if self.optimizer is None:
            self.optimizer = make_adam(self.model.parameters(), lr=LR)
        self.model.train()
        loss = self.bits_per_dim().mean()
        # Lightning's order: training_step, zero_grad, backward, optimizer step.
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def eval_step(self) -> torch.Tensor:
        self.model.eval()
        with torch.no_grad():
            return self.bits_per_dim()

    def sample_step(self) -> torch.Tensor:
        self.model.eval()
        with torch.no_grad():
            latents = self.model.sample_latents(self.cfg.batch, TEMPERATURE, self.generator)
            x = self._decode(latents)
            return self.pre.to_images(x)

    def step(self, mode: str) -> Any:
        return {"train": self.train_step, "eval": self.eval_step, "sample": self.sample_step}[
            mode
        ]()


# ---- timing --------------------------------------------------------------------------------
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
    runner: Runner,
    mode: str,
    warmup: int,
    repeats: int,
    wait_idle_s: float = 0.0,
    retries: int = 0,
    busy_threshold: float = 0.25,
) -> dict[str, Any]:
    """Median throughput of ``runner.step(mode)``.

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
            wall, cpu = timed(lambda: runner.step(mode), warmup if attempt == 0 else 0, repeats)
        res = summarize(wall, cpu, runner.cfg.batch)
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
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


# ---- fresh processes: every timing and memory measurement ------------------------------------
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


def _child_setup(spec: dict[str, Any]) -> tuple[Config, bool]:
    """Threads, and glowapp's allocator tuning unless the spec turns it off (a fresh process):
    the config, and whether the allocator is tuned."""
    tuned = bool(spec.get("tune_malloc", True)) and tune_malloc()
    torch.set_num_threads(spec["threads"])
    return Config(**spec["config"]), tuned


def timing_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Fresh process: build one variant, time each mode of ``spec['modes']`` (in that order)."""
    if spec.get("compile"):
        import torch._inductor.config

        torch._inductor.config.force_disable_caches = True  # time a cold compile
    cfg, tuned = _child_setup(spec)
    model, pre = build(
        cfg,
        memory_saving=spec.get("memory_saving", False),
        channels_last=spec.get("channels_last", True),
    )
    runner = Runner(cfg, model, pre, make_images(cfg), compile=spec.get("compile", False))
    out: dict[str, Any] = {"malloc_tuned": tuned}
    try:
        runner.init_actnorm()
        for mode in spec["modes"]:
            first = None
            if spec.get("compile"):
                t0 = time.perf_counter()
                runner.step(mode)  # compiles (training: forward and backward graphs)
                first = time.perf_counter() - t0
            res = measure_throughput(
                runner, mode, spec["warmup"], spec["repeats"], spec["wait_idle"], spec["retries"]
            )
            if first is not None:
                res["first_call_s"] = first
                res["compile_s"] = max(first - res["median_s"], 0.0)
            if mode == "train":
                res["loss_bpd_after"] = runner.train_step()
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


def memory_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Fresh process: build, note the RSS, run ``spec['iterations']`` steps, report the peak.

    ``baseline``: RSS once the model, batch (and for training the Adam optimizer, no state yet)
    exist. The peak is ``VmHWM`` reset to the baseline just before the steps, so
    ``above_baseline`` = activations + temporaries (+ gradients and Adam moments in training).
    ``peak_rss`` is the process's overall peak (imports included).
    """
    cfg, _ = _child_setup(spec)
    model, pre = build(cfg, memory_saving=spec["memory_saving"])
    runner = Runner(cfg, model, pre, make_images(cfg))
    if spec["mode"] == "train":
        runner.optimizer = make_adam(model.parameters(), lr=LR)
    startup_peak = proc_status_bytes("VmHWM")
    malloc_trim()
    baseline = proc_status_bytes("VmRSS")
    reset_ok = reset_peak_rss()
    for _ in range(spec["iterations"]):
        runner.step(spec["mode"])
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
        "params": sum(p.numel() for p in model.parameters()),
    }


def profile_child(spec: dict[str, Any]) -> dict[str, Any]:
    cfg, _ = _child_setup(spec)
    return profile_config(cfg, spec["steps"], spec["top"])


def mib(nbytes: float) -> float:
    return nbytes / 2**20


# ---- bits/dim equivalence of the options ---------------------------------------------------
def perturb_(model: torch.nn.Module, scale: float = 0.05, seed: int = 123) -> None:
    """Move every parameter off its initial value (zero-initialised couplings are the identity).

    Noise of std ``scale / sqrt(fan_in)`` for weights (``scale`` for vectors), so deep and wide
    configurations stay in a finite, realistic range.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 and p.shape[0] > 1 else 1
            p.add_(scale / math.sqrt(fan_in) * torch.randn(p.shape, generator=g))


def grads_of(model: torch.nn.Module) -> list[torch.Tensor]:
    return [
        p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        for p in model.parameters()
    ]


def max_rel_grad_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    scale = max(float(g.abs().max()) for g in a) or 1.0
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True)) / scale


def equivalence(cfg: Config, options: list[str]) -> dict[str, Any]:
    """max |Δ bits/dim| (and gradients) of each option against the plain model, same weights and batch.

    Bin-centre dequantisation (no noise), ActNorm initialised, parameters perturbed. Training-mode
    bits/dim with gradients (where memory-saving backprop is active) and eval-mode bits/dim. The
    reference is the plain contiguous (NCHW) model; each option is applied alone.
    """
    model, pre = build(cfg, channels_last=False)
    images = make_images(cfg, seed=7)
    Runner(cfg, model, pre, images).init_actnorm()
    perturb_(model)

    def evaluate(runner: Runner) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        runner.model.train()
        runner.model.zero_grad(set_to_none=True)
        bpd_train = runner.bits_per_dim(noise=False)
        bpd_train.mean().backward()
        grads = grads_of(runner.model)
        runner.model.eval()
        with torch.no_grad():
            bpd_eval = runner.bits_per_dim(noise=False)
        return bpd_train.detach(), bpd_eval, grads

    ref_train, ref_eval, ref_grads = evaluate(Runner(cfg, model, pre, images))
    out: dict[str, Any] = {"reference_bpd": float(ref_eval.mean())}
    if not (torch.isfinite(ref_eval).all() and all(torch.isfinite(g).all() for g in ref_grads)):
        out["error"] = "non-finite reference bits/dim or gradients after perturbation"
    for option in options:
        try:
            m = copy.deepcopy(model)
            if option == "memory_saving":
                m.memory_saving = True
                runner = Runner(cfg, m, pre, images)
            elif option == "channels_last":
                runner = Runner(cfg, m.use_channels_last(True), pre, images)
            elif option == "compile":
                runner = Runner(cfg, m, pre, images, compile=True)
            else:
                raise ValueError(option)
            bpd_train, bpd_eval, grads = evaluate(runner)
            out[option] = {
                "max_abs_bpd_diff_train": float((bpd_train - ref_train).abs().max()),
                "max_abs_bpd_diff_eval": float((bpd_eval - ref_eval).abs().max()),
                "max_rel_grad_diff": max_rel_grad_diff(ref_grads, grads),
            }
            out[option]["max_abs_bpd_diff"] = max(
                out[option]["max_abs_bpd_diff_train"], out[option]["max_abs_bpd_diff_eval"]
            )
        except Exception as exc:  # noqa: BLE001 - report, don't abort the whole run
            out[option] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# ---- profiling -----------------------------------------------------------------------------
def profile_config(cfg: Config, steps: int, top: int) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    model, pre = build(cfg)
    runner = Runner(cfg, model, pre, make_images(cfg))
    out: dict[str, Any] = {}
    for mode in MODES:
        for _ in range(2):
            runner.step(mode)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(steps):
                runner.step(mode)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
        by_shape = sorted(
            (e for e in prof.key_averages(group_by_input_shape=True) if "convolution" in e.key),
            key=lambda e: e.self_cpu_time_total,
            reverse=True,
        )[:top]
        out[mode] = {
            "steps": steps,
            "self_cpu_ms_per_step": total / 1e3 / steps,
            "top_ops": [
                {
                    "name": e.key,
                    "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
                    "percent": 100.0 * e.self_cpu_time_total / total,
                    "calls_per_step": e.count / steps,
                }
                for e in rows
            ],
            "top_convolutions_by_shape": [
                {
                    "name": e.key,
                    "input_shapes": str(e.input_shapes),
                    "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
                    "percent": 100.0 * e.self_cpu_time_total / total,
                    "calls_per_step": e.count / steps,
                }
                for e in by_shape
            ],
        }
    return out


# ---- one configuration ---------------------------------------------------------------------
def static_info(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Parameter count, FLOPs per image and the options' bits/dim agreement (in this process)."""
    res: dict[str, Any] = {"config": asdict(cfg)}
    model, pre = build(cfg)
    runner = Runner(cfg, model, pre, make_images(cfg))
    res["params"] = sum(p.numel() for p in model.parameters())
    runner.init_actnorm()
    runner.eval_step()  # fills the 1×1 conv caches: count the steady state
    res["fwd_flops_per_image"] = count_flops(runner.eval_step) / cfg.batch
    res["sample_flops_per_image"] = count_flops(runner.sample_step) / cfg.batch
    res["train_flops_per_image"] = count_flops(runner.train_step) / cfg.batch
    log(f"[{cfg.name}] bits/dim equivalence of the options ...")
    options = ["memory_saving", "channels_last"] + (["compile"] if args.compile else [])
    res["equivalence"] = equivalence(cfg, options)
    return res


VARIANTS = {  # name -> (spec options, modes timed); "plain" = glowapp's defaults
    "plain": ({}, MODES),
    "memory_saving": ({"memory_saving": True}, ("train",)),
    "nchw": ({"channels_last": False}, MODES),
    "glibc_malloc": ({"tune_malloc": False}, MODES),
    "compile": ({"compile": True}, MODES),
}
#: Ablation variant -> the default it turns off (its speed-up is plain ÷ variant).
ABLATIONS = {"nchw": "channels_last", "glibc_malloc": "malloc_tuning"}


def timing_specs(configs: list[Config], args: argparse.Namespace) -> list[dict[str, Any]]:
    variants = ["plain", "memory_saving"] + ([] if args.no_ablations else list(ABLATIONS))
    variants += ["compile"] if args.compile else []
    specs = []
    for cfg in configs:
        for variant in variants:
            options, modes = VARIANTS[variant]
            # One process per mode: results independent of what ran before (also for compile:
            # each process compiles only what its mode runs).
            for group in [(m,) for m in modes]:
                specs.append(
                    {
                        "config": asdict(cfg),
                        "variant": variant,
                        "modes": list(group),
                        **options,
                        "threads": args.threads,
                        "warmup": args.warmup,
                        "repeats": args.repeats,
                        "wait_idle": args.wait_idle,
                        "retries": args.retries,
                    }
                )
    return specs


def collect_timings(
    configs: list[Config], args: argparse.Namespace, report: dict[str, Any]
) -> None:
    specs = timing_specs(configs, args)
    log(f"timing: {len(specs)} fresh processes, {args.timing_jobs} at a time ...")
    per_process = math.ceil(len(specs) / len(configs)) if args.quick else 1
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
            continue
        if variant == "plain":
            r["malloc_tuned"] = out["malloc_tuned"]
            for mode in spec["modes"]:
                r[mode] = out[mode]
        elif variant == "memory_saving":
            r["train_memory_saving"] = out["train"]
        elif variant == "compile":
            c = r.setdefault("compile", {})
            for mode in spec["modes"]:
                c[mode] = out[mode] | {
                    "graph_breaks": out.get("graph_breaks"),
                    "unique_graphs": out.get("unique_graphs"),
                }
        else:
            r.setdefault(option, {}).update(out)


def derive(name: str, r: dict[str, Any], matmul_flops_per_s: float) -> None:
    """Ratios to the references / targets / matmul and the options' speed-ups."""
    r["reference"] = REFERENCE[name]
    r["target"] = TARGET[name]
    have = [m for m in MODES if m in r]
    r["ratio_vs_reference"] = {m: r[m]["images_per_s"] / REFERENCE[name][m] for m in have}
    r["ratio_vs_target"] = {m: r[m]["images_per_s"] / TARGET[name][m] for m in have}
    r["meets_target"] = {m: r[m]["images_per_s"] >= TARGET[name][m] for m in have}
    if "eval" in r:
        r["eval_flops_per_s"] = r["fwd_flops_per_image"] * r["eval"]["images_per_s"]
        r["eval_flops_vs_matmul"] = r["eval_flops_per_s"] / matmul_flops_per_s
    if "train" in r:
        r["train_flops_per_s"] = r["train_flops_per_image"] * r["train"]["images_per_s"]
        r["train_flops_vs_matmul"] = r["train_flops_per_s"] / matmul_flops_per_s
    if "train" in r and "train_memory_saving" in r:
        r["memory_saving_train_speed_ratio"] = (
            r["train_memory_saving"]["images_per_s"] / r["train"]["images_per_s"]
        )
    for option in ("channels_last", "malloc_tuning", "compile"):
        v = r.get(option)
        if v and "error" not in v:
            # Ablations: the default's speed over the default turned off; compile: over the default.
            v["speedup"] = {
                m: (
                    r[m]["images_per_s"] / v[m]["images_per_s"]
                    if option in ABLATIONS.values()
                    else v[m]["images_per_s"] / r[m]["images_per_s"]
                )
                for m in MODES
                if m in v and m in r
            }


# ---- memory sections -----------------------------------------------------------------------
# Memory processes run with allocators that hand freed memory back at once, so that the RSS follows
# the live tensors: glibc mmaps every block from 128 KiB up (a fixed threshold: glibc otherwise
# raises it as blocks are freed) and MKL's own buffer cache is off. With the tuned allocator the
# RSS is the heap's high-water mark instead, which depends on fragmentation: the same K=32
# measurement then varied by ±25% from run to run; this way it repeats to the MiB.
EXACT_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MKL_DISABLE_FAST_MM": "1"}


def memory_section(configs: list[Config], args: argparse.Namespace) -> tuple[dict, dict]:
    """Peak RSS per config and mode, and training peak vs depth with/without memory saving."""
    specs: list[dict[str, Any]] = []
    for cfg in configs:
        for mode in MODES:
            specs.append(
                {
                    "config": asdict(cfg),
                    "mode": mode,
                    "memory_saving": False,
                    "threads": args.threads,
                    "iterations": args.memory_iterations,
                    "key": ("config", cfg.name, mode),
                    "tune_malloc": False,
                }
            )
    depth_base = (QUICK_CONFIGS if args.quick else CONFIGS)["S"]
    for k in args.memory_depths:
        for saving in (False, True):
            specs.append(
                {
                    "config": asdict(replace(depth_base, steps=k)),
                    "mode": "train",
                    "memory_saving": saving,
                    "threads": args.threads,
                    "iterations": args.memory_iterations,
                    "key": ("depth", k, saving),
                    "tune_malloc": False,
                }
            )
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


# ---- output --------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_rate(r: dict[str, Any], mode: str, cfg_name: str) -> str:
    if mode not in r:
        return "error"
    v = r[mode]["images_per_s"]
    ok = "✓" if v >= TARGET[cfg_name][mode] else "✗"
    return f"{v:,.1f} ×{v / REFERENCE[cfg_name][mode]:.2f} {ok}"


def busy(r: dict[str, Any], modes: tuple[str, ...] = MODES) -> str:
    vals = [r[m]["other_processes_cpu_cores"] for m in modes if m in r]
    return f"{max(vals):.2f}" if vals else "-"


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    m = report["machine"]
    console.print(
        f"[bold]glowapp benchmark[/] — torch {m['torch']}, {m['threads']} threads, {m['cpu_model']} "
        f"({m['cpu_count']} CPUs); load average start {report['load_average_start']} end "
        f"{report['load_average_end']}"
        + ("  [yellow](--quick: tiny sizes, not a measurement)[/]" if report["quick"] else "")
    )
    console.print(
        f"float32 matmul {report['matmul']['n']}², median: {report['matmul']['flops_per_s'] / 1e9:.1f} GFLOP/s "
        f"at the start, {report['matmul_end']['flops_per_s'] / 1e9:.1f} at the end (the higher is the "
        f"reference); defaults timed: channels-last, malloc tuned ({report['malloc_tuning']})"
    )
    t = Table(
        title="Throughput, images/s (median). ×N = ratio to the best reference; ✓/✗ = target met"
    )
    for col in (
        "cfg",
        "params",
        "fwd GFLOP/img",
        "train",
        "train mem-saving",
        "eval (log p)",
        "sample T=0.7",
        "eval FLOP/s ÷ matmul",
        "busy other cores",
    ):
        t.add_column(col, justify="right")
    for name, r in report["configs"].items():
        ms = r.get("train_memory_saving")
        t.add_row(
            name,
            f"{r['params'] / 1e6:.2f}M",
            f"{r['fwd_flops_per_image'] / 1e9:.3f}",
            fmt_rate(r, "train", name),
            f"{ms['images_per_s']:,.1f}" if ms else "error",
            fmt_rate(r, "eval", name),
            fmt_rate(r, "sample", name),
            f"{100 * r['eval_flops_vs_matmul']:.1f}%" if "eval_flops_vs_matmul" in r else "-",
            busy(r),
        )
    console.print(t)
    t = Table(title="Targets / best reference (images/s)")
    for col in ("cfg", "train tgt / ref", "eval tgt / ref", "sample tgt / ref"):
        t.add_column(col, justify="right")
    for name in report["configs"]:
        t.add_row(name, *(f"{TARGET[name][mm]:g} / {REFERENCE[name][mm]:g}" for mm in MODES))
    console.print(t)

    t = Table(
        title="Peak memory, MiB: peak RSS of a fresh process / its rise above the RSS after model "
        "construction (allocators returning freed memory at once)"
    )
    for col in ("cfg", "train", "eval", "sample"):
        t.add_column(col, justify="right")
    for name, r in report["configs"].items():
        mem = r["memory"]
        t.add_row(
            name,
            *(
                f"{mib(mem[mm]['peak_rss_bytes']):,.0f} / {mib(mem[mm]['above_baseline_bytes']):,.0f}"
                for mm in MODES
            ),
        )
    console.print(t)

    d = report["memory_depth"]
    t = Table(
        title=f"Training peak memory vs depth K (config S shapes, batch {d['config']['batch']}), MiB: peak / rise"
    )
    for col in ("K", "params", "standard", "memory_saving", "peak ratio", "rise ratio"):
        t.add_column(col, justify="right")
    for row in d["rows"]:
        s, v = row["standard"], row["memory_saving"]
        t.add_row(
            str(row["steps"]),
            f"{row['params'] / 1e6:.2f}M",
            f"{mib(s['peak_rss_bytes']):,.0f} / {mib(s['above_baseline_bytes']):,.0f}",
            f"{mib(v['peak_rss_bytes']):,.0f} / {mib(v['above_baseline_bytes']):,.0f}",
            f"{row['peak_ratio']:.2f}",
            f"{row['above_baseline_ratio']:.2f}",
        )
    console.print(t)

    t = Table(
        title="Options: speed-up (defaults: with ÷ without, in the same run; others: ÷ defaults), "
        "and max |Δ bits/dim| (train and eval) against the plain NCHW model on a fixed batch"
    )
    for col in (
        "cfg",
        "option",
        "train",
        "eval",
        "sample",
        "compile s (train/eval/sample)",
        "max |Δbpd|",
        "max rel Δgrad",
    ):
        t.add_column(col, justify="right")
    for name, r in report["configs"].items():
        eq = r["equivalence"]
        msr = r.get("memory_saving_train_speed_ratio")
        t.add_row(
            name,
            "memory_saving",
            f"×{msr:.2f}" if msr else "-",
            "-",
            "-",
            "-",
            *eq_cells(eq, "memory_saving"),
        )
        for option in ("channels_last", "malloc_tuning", "compile"):
            v = r.get(option)
            if v is None:
                if option in eq:
                    t.add_row(name, option, "(not timed)", "", "", "", *eq_cells(eq, option))
                continue
            if "error" in v:
                t.add_row(name, option, "error", v["error"][:50], "", "", *eq_cells(eq, option))
                continue
            sp = v.get("speedup", {})
            cs = (
                "/".join(
                    f"{v[mm]['compile_s']:.0f}" for mm in MODES if "compile_s" in v.get(mm, {})
                )
                or "-"
            )
            t.add_row(
                name,
                option,
                *(f"×{sp[mm]:.2f}" if mm in sp else "-" for mm in MODES),
                cs,
                *eq_cells(eq, option),
            )
    console.print(t)

    for name, prof in (report.get("profile") or {}).items():
        for mode, p in prof.items():
            t = Table(
                title=f"Profile {name} {mode}: top ops by self CPU time ({p['self_cpu_ms_per_step']:.1f} ms/step)"
            )
            for col in ("op", "ms/step", "%", "calls/step"):
                t.add_column(col, justify="left" if col == "op" else "right")
            for e in p["top_ops"]:
                t.add_row(
                    e["name"][:60],
                    f"{e['self_cpu_ms_per_step']:.2f}",
                    f"{e['percent']:.1f}",
                    f"{e['calls_per_step']:.0f}",
                )
            console.print(t)


def eq_cells(eq: dict[str, Any], option: str) -> tuple[str, str]:
    e = eq.get(option, {})
    if "error" in e:
        return ("error", e["error"][:40])
    if not e:
        return ("-", "-")
    return (f"{e['max_abs_bpd_diff']:.2e}", f"{e['max_rel_grad_diff']:.2e}")


# ---- main ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--configs",
        nargs="+",
        default=["S", "C"],
        choices=sorted(CONFIGS),
        help="configurations to run",
    )
    p.add_argument(
        "--threads", type=int, default=2, help="torch.set_num_threads (also in memory subprocesses)"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed repeats per measurement (default 10, --quick 2)",
    )
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed warm-up repeats (default 3, --quick 1)"
    )
    p.add_argument(
        "--out", type=Path, default=Path("bench/results/benchmark.json"), help="JSON output path"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and few repeats: a fast smoke run, not a measurement",
    )
    p.add_argument(
        "--memory-depths",
        type=int,
        nargs="+",
        default=None,
        help="K values for the memory-vs-depth sweep (default 8 16 32; --quick 1 2)",
    )
    p.add_argument(
        "--memory-iterations", type=int, default=2, help="steps run in each memory subprocess"
    )
    p.add_argument(
        "--memory-jobs",
        type=int,
        default=1,
        help="memory subprocesses run at once (RSS is per process)",
    )
    p.add_argument(
        "--matmul-size",
        type=int,
        default=None,
        help="n of the float32 n×n matmul reference (default 2048, --quick 256)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="also measure torch.compile (compile time, speed, bits/dim)",
    )
    p.add_argument(
        "--no-ablations",
        action="store_true",
        help="skip timing glowapp's defaults turned off (NCHW layout, glibc's default malloc)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="torch.profiler: top ops by self CPU time per config and mode",
    )
    p.add_argument("--profile-steps", type=int, default=3, help="steps profiled per mode")
    p.add_argument("--profile-top", type=int, default=15, help="ops listed per profile")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="before each timing, wait up to this many seconds for other processes to leave the CPUs (shared machines)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=0,
        help="re-time a measurement up to this many times when other processes kept >0.25 cores busy; the least disturbed attempt is kept",
    )
    p.add_argument(
        "--timing-jobs",
        type=int,
        default=1,
        help="timing processes run at once (keep 1 for real measurements)",
    )
    p.add_argument("--no-table", action="store_true", help="skip the printed tables (JSON only)")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 3
    if args.memory_depths is None:
        args.memory_depths = [1, 2] if args.quick else [8, 16, 32]
    if args.matmul_size is None:
        args.matmul_size = 256 if args.quick else 2048
    if args.quick and args.memory_jobs == 1:
        args.memory_jobs = 2  # RSS is per process: overlapping the tiny jobs only saves time
    if args.quick and args.timing_jobs == 1:
        args.timing_jobs = 2  # --quick numbers are not measurements anyway
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    table = QUICK_CONFIGS if args.quick else CONFIGS
    configs = [table[name] for name in args.configs]
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
        "load_average_start": load_average(),
        "started_unix": started,
        "temperature": TEMPERATURE,
        "n_bits": N_BITS,
        "reference_note": "reference figures: best of other implementations (rosinality/glow-pytorch, "
        "y0ast/Glow-PyTorch) on a 2-thread CPU of this kind, as given with the task; not re-measured here",
    }
    log(f"matmul {args.matmul_size}² float32 ...")
    report["matmul"] = matmul_flops(args.matmul_size, args.threads, repeats=max(args.repeats, 5))
    report["configs"] = {}
    for cfg in configs:
        log(f"[{cfg.name}] parameters and FLOPs ...")
        report["configs"][cfg.name] = static_info(cfg, args)
    collect_timings(configs, args, report)
    report["matmul_end"] = matmul_flops(
        args.matmul_size, args.threads, repeats=max(args.repeats, 5)
    )
    # The less disturbed of the two matmul measurements is the reference peak.
    report["matmul_reference_flops_per_s"] = max(
        report["matmul"]["flops_per_s"], report["matmul_end"]["flops_per_s"]
    )
    for cfg in configs:
        derive(cfg.name, report["configs"][cfg.name], report["matmul_reference_flops_per_s"])

    per_config, depth = memory_section(configs, args)
    for name, mem in per_config.items():
        report["configs"][name]["memory"] = mem
    report["memory_depth"] = depth

    if args.profile:
        log("profiling (a fresh process per config) ...")
        specs = [
            {
                "config": asdict(c),
                "threads": args.threads,
                "steps": args.profile_steps,
                "top": args.profile_top,
            }
            for c in configs
        ]
        report["profile"] = dict(
            zip([c.name for c in configs], run_fresh(profile_child, specs, 1), strict=True)
        )
    report["load_average_end"] = load_average()
    report["wall_s"] = time.time() - started

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    if not args.no_table:
        print_report(report)
    log(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
