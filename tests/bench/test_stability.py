"""``bench.stability --quick`` runs end to end and reports what it checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.stability import main


@pytest.mark.usefixtures("single_thread")
def test_quick_stability_run_passes_and_writes_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "stability.json"
    args = ["--quick", "--threads", "1", "--data-root", str(tmp_path / "data"), "--out", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["steps"] == 30 and report["precision"] == "bf16-mixed"
    assert "--model.flow.init_args.steps" in report["overrides"]
    assert report["nonfinite_losses"] == 0 and report["skipped_steps"] == 0
    assert report["failures"] == []
    assert 0 <= report["inverse_drift"] < 1e-3
    assert report["nonfinite_samples"] == 0 and report["samples"] == 64
    assert report["last_loss"] < report["first_loss"]
