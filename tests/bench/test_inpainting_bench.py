"""The inpainting benchmark: ``bench.inpainting --quick`` runs end to end and keeps its JSON contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers.trained import Trained

from bench.inpainting import MASKS, main


@pytest.mark.usefixtures("single_thread")
def test_quick_run_writes_the_table_and_the_report(
    tmp_path: Path, trained_model: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "inpainting.json"
    args = ["--quick", "--ckpt", str(trained_model.checkpoint), "--out", str(out)]
    assert main([*args, "--data-root", str(trained_model.data_root), "--single", "1"]) == 0
    assert "inpainting, 4 Fashion-MNIST test images" in capsys.readouterr().out

    report = json.loads(out.read_text())
    assert report["quick"] is True and report["num_images"] == 4
    assert {"psnr", "ssim", "bits_per_dim", "machine", "checkpoint"} <= set(report)
    rows = report["rows"]
    methods = ["flow (Adam, ≤5 it.)", "gradient ascent (5 it.)", "biharmonic", "mean image"]
    assert [(r["mask"], r["method"]) for r in rows] == [(m, x) for m in MASKS for x in methods]
    for row in rows:
        assert row["num_images"] == 4
        assert 0 < row["hidden_fraction"] <= 0.5
        assert math.isfinite(row["psnr_hidden_db"]) and row["psnr_hidden_db"] > 0
        assert -1 <= row["ssim"] <= 1
        assert math.isfinite(row["bits_per_dim"]) and row["bits_per_dim"] > 0
        assert row["seconds_per_image_single"] > 0 and row["seconds_per_image_batched"] > 0
