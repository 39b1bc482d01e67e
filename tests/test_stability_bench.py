"""bench/stability.py runs end to end (``--quick``) and reports what it checks."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.usefixtures("single_thread")
def test_quick_stability_run_passes_and_writes_json(tmp_path: Path) -> None:
    main = runpy.run_path(str(REPO / "bench" / "stability.py"))["main"]
    out = tmp_path / "stability.json"
    args = ["--quick", "--threads", "1", "--data-root", str(tmp_path / "data"), "--out", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["steps"] == 30 and report["precision"] == "bf16-mixed"
    assert (
        report["nonfinite_losses"] == 0
        and report["skipped_steps"] == 0
        and report["failures"] == []
    )
    assert 0 <= report["inverse_drift"] < 1e-3
    assert report["nonfinite_samples"] == 0 and report["samples"] == 64
    assert report["last_loss"] < report["first_loss"]
