"""The sample-quality recipe benchmark runs end to end: ``bench.recipe --quick`` trains one
ingredient for seconds, samples its checkpoints every way of that ingredient, and writes every
row's metrics. No assertions on the values: the model trains for two CPU seconds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.recipe import CONDITIONAL_ROWS, main


@pytest.mark.usefixtures("single_thread")
def test_quick_run_writes_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "recipe.json"
    args = ["--quick", "--only", "glow-cond", "--threads", "1", "--workdir", str(tmp_path / "runs"),
            "--data-root", str(tmp_path / "data"), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["num_samples"] == 200 and report["cpu_model"] and report["cpu_flags"]
    assert report["complete"] is True
    (entry,) = report["results"]
    assert entry["ingredient"] == "glow-cond" and entry["steps"] > 0
    rows = entry["rows"]
    assert [row["row"] for row in rows] == [row.name for row in CONDITIONAL_ROWS]
    for row, spec in zip(rows, CONDITIONAL_ROWS, strict=True):
        assert row["guidance"] == spec.guidance and row["unconditional"] == spec.unconditional
        assert math.isfinite(row["fid"]) and 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
        assert math.isfinite(row["bpd"]) and row["sample_1000_s"] > 0
        if spec.unconditional:  # the "no label" branch: no class to agree with
            assert row["class_agreement"] is None and row["bits_label"].endswith("of p(x | ∅)")
        else:
            assert 0 <= row["class_agreement"]["overall"] <= 1
    assert (tmp_path / "runs" / "glow-cond.json").is_file()
