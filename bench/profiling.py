"""``--profile``: the top ops by self CPU time of each step, from ``torch.profiler``."""

from __future__ import annotations

from typing import Any

from torch.profiler import ProfilerActivity, profile

from bench.configs import MODES, Config
from bench.timing import setup_process
from bench.workload import workload


def _rows(events: Any, steps: int, total: float, with_shapes: bool) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        row = {"name": e.key} | ({"input_shapes": str(e.input_shapes)} if with_shapes else {})
        row |= {
            "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
            "percent": 100.0 * e.self_cpu_time_total / total,
            "calls_per_step": e.count / steps,
        }
        rows.append(row)
    return rows


def profile_config(cfg: Config, steps: int, top: int, fast: bool = True) -> dict[str, Any]:
    """Per mode: self CPU ms per step, the ``top`` ops and the ``top`` convolutions by input shape.

    Times are the profiler's self CPU time on the calling thread (≈ the op's wall time; intra-op
    worker threads are not added). Two untimed steps of each mode first. Eval and sample run
    the folded inference path unless ``fast`` is False (every layer as in training).
    """
    work = workload(cfg)
    work.module.flow.use_fast_inference(fast)
    out: dict[str, Any] = {}
    for mode in MODES:
        for _ in range(2):
            work.step(mode)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(steps):
                work.step(mode)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        ops = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
        convs = sorted(
            (e for e in prof.key_averages(group_by_input_shape=True) if "convolution" in e.key),
            key=lambda e: e.self_cpu_time_total,
            reverse=True,
        )[:top]
        out[mode] = {
            "steps": steps,
            "self_cpu_ms_per_step": total / 1e3 / steps,
            "top_ops": _rows(ops, steps, total, with_shapes=False),
            "top_convolutions_by_shape": _rows(convs, steps, total, with_shapes=True),
        }
    return out


def profile_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Fresh process: :func:`profile_config` of ``spec['config']`` (``spec['fast']``: the
    folded inference path, default on)."""
    setup_process(spec["threads"])
    config = Config(**spec["config"])
    return profile_config(config, spec["steps"], spec["top"], spec.get("fast", True))
