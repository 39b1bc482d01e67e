"""The performance benchmark drives glowapp's own module, and ``python -m bench.benchmark --quick``
runs end to end and writes the JSON report ``bench/README.md`` describes.

No timing assertions: ``--quick`` uses tiny models and is not a measurement.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from bench.configs import QUICK_CONFIGS
from bench.workload import workload
from glowapp import GlowModule
from glowapp.image_flow import ImageFlow

REPO = Path(__file__).resolve().parents[2]
MODES = ("train", "eval", "sample")
TIMING_FIELDS = ("images_per_s", "median_s", "min_s", "max_s", "cpu_s_median", "repeats")
MEMORY_FIELDS = ("peak_rss_bytes", "baseline_rss_bytes", "above_baseline_bytes", "params")


def positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@pytest.mark.usefixtures("single_thread")
def test_workload_runs_the_modules_own_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Train, eval and sample go through GlowModule's configure_optimizers, training_step and
    test_step and its model's decode: the benchmark has no step of its own that could drift."""
    calls: list[str] = []
    for owner, name in (
        (GlowModule, "configure_optimizers"),
        (GlowModule, "training_step"),
        (GlowModule, "test_step"),
        (ImageFlow, "decode"),
    ):
        method = getattr(owner, name)

        def spy(self: Any, *args: Any, _name: str = name, _m: Any = method, **kwargs: Any) -> Any:
            calls.append(_name)
            return _m(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    work = workload(QUICK_CONFIGS["S"])
    assert calls == ["configure_optimizers"]
    assert work.optimizer.defaults["fused"] and work.scheduler.get_last_lr() != [0.0]
    before = [p.detach().clone() for p in work.module.parameters()]
    loss = work.train_step()
    assert math.isfinite(loss)
    assert any(not torch.equal(a, p) for a, p in zip(before, work.module.parameters(), strict=True))
    assert work.scheduler.last_epoch == 1  # the per-step LR schedule advanced
    work.eval_step()
    assert float(work.module.test_bpd.compute()) == pytest.approx(loss, abs=0.5)
    images = work.sample_step()
    assert images.shape == (1, 4, 1, 16, 16) and images.min() >= 0 and images.max() <= 1
    assert calls == ["configure_optimizers", "training_step", "test_step", "decode"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "benchmark.json"
    # One thread and one config: on a shared 2-core machine this checks the pipeline, fast.
    cmd = [sys.executable, "-m", "bench.benchmark", "--quick", "--configs", "S"]
    cmd += ["--threads", "1", "--no-table", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text())


def test_machine_info(report: dict[str, Any]) -> None:
    assert report["quick"] is True and list(report["configs"]) == ["S"]
    assert "MALLOC_MMAP_THRESHOLD_=131072" in report["memory_allocator"]
    assert "training_step" in report["workload"]
    machine = report["machine"]
    assert machine["torch"] and machine["cpu_model"]
    assert machine["threads"] == 1 and machine["torch_num_threads"] == 1
    for key in ("load_average_start", "load_average_end"):
        assert len(report[key]) == 3 and all(isinstance(v, float) for v in report[key])
    for key in ("matmul", "matmul_end"):
        assert positive(report[key]["flops_per_s"]) and positive(report[key]["median_s"])


def test_config_fields_are_positive(report: dict[str, Any]) -> None:
    r = report["configs"]["S"]
    assert "errors" not in r, r.get("errors")
    for key in (
        "params",
        "fwd_flops_per_image",
        "sample_flops_per_image",
        "train_flops_per_image",
        "eval_flops_per_s",
        "eval_flops_vs_matmul",
        "train_flops_per_s",
        "train_flops_vs_matmul",
        "memory_saving_train_speed_ratio",
    ):
        assert positive(r[key]), (key, r[key])
    for mode in MODES:
        for field in TIMING_FIELDS:
            assert positive(r[mode][field]), (mode, field, r[mode][field])
        assert len(r[mode]["times_s"]) == r[mode]["repeats"]
        assert r[mode]["other_processes_cpu_cores"] >= 0
        for table in ("reference", "target", "ratio_vs_reference", "ratio_vs_target"):
            assert positive(r[table][mode]), (table, mode)
        for field in MEMORY_FIELDS:
            assert positive(r["memory"][mode][field]), (mode, field, r["memory"][mode][field])
        assert r["memory"][mode]["peak_rss_bytes"] >= r["memory"][mode]["baseline_rss_bytes"]
    for field in TIMING_FIELDS:
        assert positive(r["train_memory_saving"][field])
    assert math.isfinite(r["train"]["loss_bpd_after"])


def test_memory_vs_depth(report: dict[str, Any]) -> None:
    rows = report["memory_depth"]["rows"]
    assert [row["steps"] for row in rows] == report["args"]["memory_depths"]
    for row in rows:
        for variant in ("standard", "memory_saving"):
            for field in MEMORY_FIELDS:
                assert positive(row[variant][field]), (row["steps"], variant, field)
        assert positive(row["peak_ratio"]) and positive(row["above_baseline_ratio"])
    params = [row["params"] for row in rows]
    assert params == sorted(params) and params[0] < params[-1]


@pytest.mark.parametrize("option", ["memory_saving", "channels_last"])
def test_options_leave_bits_per_dim_unchanged(report: dict[str, Any], option: str) -> None:
    eq = report["configs"]["S"]["equivalence"]
    assert positive(eq["reference_bpd"])
    result = eq[option]
    assert "error" not in result, result
    assert result["max_abs_bpd_diff_train"] < 1e-4 and result["max_abs_bpd_diff_eval"] < 1e-4
    assert result["max_abs_bpd_diff"] < 1e-4 and result["max_rel_grad_diff"] < 1e-3


def test_defaults_are_timed_against_their_ablations(report: dict[str, Any]) -> None:
    """The headline runs glowapp's defaults (tuned malloc on Linux); each default is also timed off."""
    r = report["configs"]["S"]
    assert r["malloc_tuned"] is sys.platform.startswith("linux")
    for option in ("channels_last", "malloc_tuning"):
        assert "error" not in r[option], r[option]
        for mode in MODES:
            assert positive(r[option][mode]["images_per_s"])
            assert r[option]["speedup"][mode] == pytest.approx(
                r[mode]["images_per_s"] / r[option][mode]["images_per_s"]
            )
    assert r["malloc_tuning"]["malloc_tuned"] is False
