"""``bench.manipulation`` runs end to end on a small model and reports the classifier's shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.trained import Trained

from bench.manipulation import main


@pytest.mark.usefixtures("single_thread")
def test_a_small_run_writes_one_row_per_alpha(
    tmp_path: Path, trained_model: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "manipulation.json"
    args = ["--ckpt", str(trained_model.checkpoint), "--data-root", str(trained_model.data_root)]
    args += ["--images", "6", "--direction-images", "20", "--alpha", "0", "2", "--json", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["held_out_images"] == 6 and report["direction_images_per_class"] == [20, 20]
    assert report["source"] == {"class": 7, "name": "Sneaker"}
    assert 0.9 < report["classifier"]["test_accuracy"] < 0.95
    rows = report["rows"]
    assert [row["alpha"] for row in rows] == [0.0, 2.0]
    assert rows[0]["unchanged_share"] == 1.0 and rows[1]["unchanged_share"] < 1.0
    for row in rows:
        assert 0.0 <= row["target_share"] + row["source_share"] <= 1.0
