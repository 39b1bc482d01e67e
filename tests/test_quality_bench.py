"""Smoke test of the model-quality benchmark: ``bench/quality.py --quick`` runs end to end.

Variational dequantisation is switched on so the importance-weighted column is exercised too. No
assertions on the bits/dim values: ``--quick`` trains a tiny model for seconds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_quick_run_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    cmd = [
        sys.executable, str(REPO / "bench" / "quality.py"), "--quick", "--threads", "1",
        "--seconds", "1", "2", "--out", str(out),
        "--model.dequantization", "variational", "--data.init_args.root", str(tmp_path / "data"),
        "--data.init_args.download", "false",
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert "test bits/dim after fixed training time" in proc.stdout

    report = json.loads(out.read_text())
    assert report["quick"] is True and report["dequantization"] == "variational"
    assert report["iw_samples"] == 2 and report["test_images"] == 64
    assert report["model"]["dequantization"] == "variational"
    assert "--model.dequantization" in report["overrides"]
    budgets = report["budgets"]
    assert [row["budget_s"] for row in budgets] == [1.0, 2.0]
    assert budgets[0]["steps"] <= budgets[1]["steps"]
    for row in budgets:
        assert row["budget_reached"] and row["elapsed_s"] >= row["budget_s"]
        assert row["images_per_s"] > 0 and row["images_seen"] > 0
        assert math.isfinite(row["test_bpd"]) and math.isfinite(row["test_bpd_iw"])
        assert Path(row["checkpoint"]).exists()
