"""scripts/plot_training_curve.py draws bits/dim against training hours from a CSVLogger file,
with TrainingClock's column or, lacking it, steps scaled to a given total."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plot_training_curve.py"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("plot_training_curve", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _metrics(path: Path, clock: bool) -> Path:
    header = "epoch,step," + ("time/train_hours," if clock else "") + "train/bpd,val/bpd"
    rows = [header]
    for step in range(49, 1000, 50):
        hours = f"{step / 1000:.3f}," if clock else ""
        rows.append(f"0,{step},{hours}{4 - step / 1000:.3f},")
        if step % 500 == 499:
            rows.append(f"0,{step}," + (("," if clock else "") + f",{3.9 - step / 1000:.3f}"))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("clock", [True, False])
def test_draws_a_png(tmp_path: Path, clock: bool) -> None:
    metrics = _metrics(tmp_path / "metrics.csv", clock)
    out = tmp_path / "curve.png"
    hours = [] if clock else ["--hours", "2.5"]
    assert _script().main([str(metrics), "--out", str(out), *hours]) == 0
    with Image.open(out) as image:
        assert image.size[0] > 300 and image.size[1] > 200


def test_a_log_without_clock_needs_the_total(tmp_path: Path) -> None:
    metrics = _metrics(tmp_path / "metrics.csv", clock=False)
    with pytest.raises(ValueError, match="pass --hours"):
        _script().main([str(metrics), "--out", str(tmp_path / "curve.png")])
    module = _script()
    columns = module.read_metrics(metrics)
    assert set(columns) == {"train/bpd", "val/bpd"} and columns["val/bpd"].shape == (2, 2)
