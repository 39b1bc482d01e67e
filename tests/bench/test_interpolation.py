"""The interpolation benchmark: ``bench.interpolation --quick`` runs end to end and keeps its JSON
contract (both latent modes and the pixel reference, a row per position, exact endpoints)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers.trained import Trained

from bench.interpolation import SCHEMA_VERSION, main


@pytest.mark.usefixtures("single_thread")
def test_quick_run_writes_the_table_and_the_report(
    tmp_path: Path, trained_model: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "interpolation.json"
    args = ["--quick", "--ckpt", str(trained_model.checkpoint), "--out", str(out)]
    assert main([*args, "--data-root", str(trained_model.data_root)]) == 0
    assert "interpolation, 4 pairs of Fashion-MNIST test images" in capsys.readouterr().out

    report = json.loads(out.read_text())
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["quick"] is True and report["pairs"] == 4 and report["steps"] == 5
    assert {"checkpoint", "measure", "machine", "comparison"} <= set(report)
    assert list(report["modes"]) == ["linear", "spherical", "pixel"]
    for name, mode in report["modes"].items():
        assert mode["latent"] is (name != "pixel")
        rows = mode["rows"]
        assert [row["t"] for row in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
        for row in rows:
            assert math.isfinite(row["bpd_mean"]) and row["bpd_mean"] > 0
            assert math.isfinite(row["bpd_std"]) and row["bpd_std"] >= 0
            assert row["bpd_p10"] <= row["bpd_p90"]
            assert 0 <= row["share_worse_than_both_endpoints"] <= 1
        summary = mode["summary"]
        assert all(math.isfinite(value) for value in summary.values())
        assert summary["path_worst_minus_worse_endpoint_bpd_mean"] >= 0
        # An invertible flow reproduces its endpoints (encoded at the bin centres) exactly.
        error = mode["endpoint_error"]
        assert error["max_abs_levels"] <= 1 and error["exact_share"] >= 0.75
        assert mode["seconds_per_pair_scoring"] > 0
    # Every mode scores the same endpoints.
    ends = {
        name: (m["rows"][0]["bpd_mean"], m["rows"][-1]["bpd_mean"])
        for name, m in report["modes"].items()
    }
    assert ends["linear"] == pytest.approx(ends["spherical"])
    assert ends["linear"] == pytest.approx(ends["pixel"])
    assert report["modes"]["linear"]["rows"][2]["latent_norm_ratio_mean"] < 1
    assert report["modes"]["spherical"]["rows"][2]["latent_norm_ratio_mean"] == pytest.approx(
        1, abs=0.1
    )
    assert len(report["comparison"]["spherical_minus_linear_bpd_mean_by_t"]) == 5
