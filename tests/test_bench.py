"""Smoke test of the performance benchmark: ``bench/benchmark.py --quick`` runs end to end.

It checks that the JSON report has every field, with positive numbers, and that the optimisation
options (memory-saving backprop, channels-last) leave bits/dim unchanged and that the defaults
are timed against their ablations. No timing assertions:
``--quick`` uses tiny models and is not a measurement.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "benchmark.json"
    # One thread: on a shared 2-core machine two OpenMP threads can be slowed down a lot by
    # other processes, and this only checks that the pipeline works.
    cmd = [
        sys.executable,
        str(REPO / "bench" / "benchmark.py"),
        "--quick",
        "--threads",
        "1",
        "--no-table",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert out.exists()
    return json.loads(out.read_text())


def test_machine_info(report: dict[str, Any]) -> None:
    assert report["quick"] is True
    assert "MALLOC_MMAP_THRESHOLD_=131072" in report["memory_allocator"]
    machine = report["machine"]
    assert machine["torch"] and machine["cpu_model"]
    assert machine["threads"] == 1 and machine["torch_num_threads"] == 1
    for key in ("load_average_start", "load_average_end"):
        assert len(report[key]) == 3 and all(isinstance(v, float) for v in report[key])
    for key in ("matmul", "matmul_end"):
        assert positive(report[key]["flops_per_s"]) and positive(report[key]["median_s"])


@pytest.mark.parametrize("name", ["S", "C"])
def test_config_fields_are_positive(report: dict[str, Any], name: str) -> None:
    r = report["configs"][name]
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


@pytest.mark.parametrize("name", ["S", "C"])
@pytest.mark.parametrize("option", ["memory_saving", "channels_last"])
def test_options_leave_bits_per_dim_unchanged(
    report: dict[str, Any], name: str, option: str
) -> None:
    eq = report["configs"][name]["equivalence"]
    assert positive(eq["reference_bpd"])
    result = eq[option]
    assert "error" not in result, result
    assert result["max_abs_bpd_diff"] < 1e-4
    assert result["max_abs_bpd_diff_train"] < 1e-4 and result["max_abs_bpd_diff_eval"] < 1e-4
    assert result["max_rel_grad_diff"] < 1e-3


@pytest.mark.parametrize("name", ["S", "C"])
def test_defaults_are_timed_against_their_ablations(report: dict[str, Any], name: str) -> None:
    """The headline runs glowapp's defaults (tuned malloc on Linux); each default is also timed off."""
    r = report["configs"][name]
    assert r["malloc_tuned"] is sys.platform.startswith("linux")
    for option in ("channels_last", "malloc_tuning"):
        assert "error" not in r[option], r[option]
        for mode in MODES:
            assert positive(r[option][mode]["images_per_s"])
            assert positive(r[option]["speedup"][mode])
    assert r["malloc_tuning"]["malloc_tuned"] is False


# A stand-in for rosinality/glow-pytorch's model.py with its interface (not its code): the
# comparison script must set the coupling width through ``AffineCoupling``'s ``filter_size``.
FAKE_REFERENCE = """
import torch
from torch import nn


class AffineCoupling(nn.Module):
    def __init__(self, in_channel, filter_size=512, affine=True):
        super().__init__()
        if filter_size not in (16, 24):  # the --quick configs' hidden widths
            raise RuntimeError(f"coupling width not set: {filter_size}")
        self.net = nn.Conv2d(in_channel, filter_size, 3, padding=1)


class Glow(nn.Module):
    def __init__(self, in_channel, n_flow, n_block, affine=True, conv_lu=True):
        super().__init__()
        self.coupling = AffineCoupling(in_channel)

    def forward(self, x):
        h = self.coupling.net(x)
        log_p = -(h**2).flatten(1).sum(1)
        return log_p, torch.zeros_like(log_p), [h]

    def reverse(self, z_list, reconstruct=False):
        return z_list[0].sum() * torch.ones(1)
"""


def test_compare_reference_runs_both_implementations(tmp_path: Path) -> None:
    """``bench/compare_reference.py --quick`` times glowapp and a reference model side by side."""
    model = tmp_path / "model.py"
    model.write_text(FAKE_REFERENCE)
    out = tmp_path / "compare.json"
    cmd = [sys.executable, str(REPO / "bench" / "compare_reference.py"), "--quick"]
    cmd += ["--rosinality-model", str(model), "--configs", "S", "--allocators", "tuned"]
    cmd += ["--rounds", "1", "--threads", "1", "--repeats", "1", "--warmup", "0"]
    cmd += ["--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["config"], r["mode"], r["allocator"]) for r in rows] == [
        ("S", mode, "tuned") for mode in MODES
    ]
    for row in rows:
        assert positive(row["ratio_median"])
        assert all(
            positive(v) for v in row["glowapp_images_per_s"] + row["rosinality_images_per_s"]
        )


def test_compare_reference_rejects_a_missing_model(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "bench" / "compare_reference.py")]
    cmd += ["--rosinality-model", str(tmp_path / "nope.py")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no such file" in proc.stderr
