"""bench.iresnet_image runs end to end on tiny widths and reports what its table claims."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.iresnet_image import main


@pytest.mark.usefixtures("single_thread")
def test_tiny_run_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "iresnet.json"
    argv = ["--batch", "2", "--rounds", "2", "--terms", "2", "8", "--glow-hidden", "8",
            "--iresnet-hidden", "16", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["shape"] == [2, 4, 14, 14] and report["rounds"] == 2
    glow, short, long = report["rows"]
    assert glow["variant"].startswith("Glow step") and glow["train_vs_glow_step"] == 1.0
    assert (short["series_terms"], long["series_terms"]) == (2, 8)
    assert short["bias_bound_bpd"] > long["bias_bound_bpd"] > 0  # longer series, smaller bias
    for row in report["rows"]:
        assert row["train_s_spread"][0] <= row["train_s_median"] <= row["train_s_spread"][1]
        assert math.isfinite(row["inverse_s_median"]) and row["parameters"] > 0
    assert 1 <= short["inverse_iterations"] <= 1000
