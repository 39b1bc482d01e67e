"""The model-quality benchmark: ``bench.quality --quick`` runs end to end with the config's new
form of overrides (``--model.flow.init_args.*``, ``--model.dequantization.kind``).

Variational dequantisation is switched on so the importance-weighted column is exercised too, and
budgets count CPU seconds (``--clock cpu``). No
assertions on the bits/dim values: ``--quick`` trains a tiny model for seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.quality import main


@pytest.mark.usefixtures("single_thread")
def test_quick_run_writes_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "quality.json"
    args = [
        "--quick", "--threads", "1", "--seconds", "1", "2", "--clock", "cpu", "--out", str(out),
        "--model.dequantization.kind", "variational", "--model.flow.init_args.hidden", "12",
        "--data.init_args.root", str(tmp_path / "data"), "--data.init_args.download", "false",
    ]  # fmt: skip
    assert main(args) == 0
    assert "test bits/dim after fixed training time" in capsys.readouterr().out

    report = json.loads(out.read_text())
    assert report["quick"] is True and report["dequantization"] == "variational"
    assert report["iw_samples"] == 2 and report["test_images"] == 64
    assert report["clock"] == "cpu" and report["sample_images"] == 8
    model = report["model"]
    assert model["dequantization"]["kind"] == "variational"
    assert model["flow"]["class_path"].endswith("Glow")
    assert model["flow"]["init_args"]["hidden"] == 12  # the override reached the flow
    assert model["flow"]["init_args"]["steps"] == 1  # --quick's own override
    assert "--model.dequantization.kind" in report["overrides"]
    budgets = report["budgets"]
    assert [row["budget_s"] for row in budgets] == [1.0, 2.0]
    assert budgets[0]["steps"] <= budgets[1]["steps"]
    for row in budgets:
        assert row["budget_reached"] and row["elapsed_s"] >= row["budget_s"]
        assert row["images_per_s"] > 0 and row["images_seen"] > 0
        assert row["sample_images_per_s"] > 0
        assert math.isfinite(row["test_bpd"]) and math.isfinite(row["test_bpd_iw"])
        assert Path(row["checkpoint"]).is_relative_to(tmp_path) and Path(row["checkpoint"]).exists()
