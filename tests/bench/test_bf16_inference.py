"""``bench/bf16_inference.py``: bf16 autocast really runs (results move, a little), float32 is
the folded path's, and the report has every field."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bench.bf16_inference import compare, config_model, main


def test_bf16_moves_results_by_bf16_rounding_only() -> None:
    model, images = config_model("S")
    row = compare(model, images[:4], rounds=1, repeats=1)
    # Autocast took effect (bf16 coupling networks change the values) ...
    assert 0.0 < row["max_abs_decoded_diff"] < 0.05 and 0.0 < row["max_abs_bpd_diff"] < 0.05
    # ... and the float32 side is the model's own bits/dim with the same dequantisation draw.
    with torch.inference_mode():
        bpd = model.bits_per_dim(images[:4], generator=torch.Generator().manual_seed(0))
    assert row["mean_bpd_float32"] == float(bpd.double().mean())
    assert row["eval"]["speedup"] > 0 and row["sample"]["float32_s"] > 0


def test_report_records_the_machine_and_every_model(tmp_path: Path) -> None:
    out = tmp_path / "bf16.json"
    main(["--configs", "S", "--ckpt", "", "--rounds", "1", "--repeats", "1", "--json", str(out)])
    report = json.loads(out.read_text())
    assert list(report["rows"]) == ["config S"]
    assert {"cpu_model", "cpu_flags"} <= set(report["machine"]) and report["rounds"] == 1
