"""``python -m glowapp.playground`` writes its four figures and the JSON, and prints the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glowapp.playground import __main__ as playground_main
from glowapp.playground.experiments import PlaygroundConfig
from glowapp.playground.grid import Grid

TINY = PlaygroundConfig(
    energies=("U1", "U2"),
    lengths=(2,),
    kl_steps=3,
    datasets=("moons",),
    density_flows=("MAF (affine)", "IAF"),
    ml_steps=3,
    train_size=100,
    test_size=100,
    samples=200,
    cost_dims=(2, 4),
    timing_repeats=1,
    grid=Grid(-5.0, 5.0, 20),
)


def test_main_writes_figures_and_results(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(playground_main, "QUICK", TINY)
    playground_main.main(["--quick", "--figures", "figs", "--results", "out/flows_2d.json"])
    figures = sorted(path.name for path in (tmp_path / "figs").iterdir())
    assert figures == [
        "datasets.png",
        "datasets_samples.png",
        "energies.png",
        "energies_samples.png",
    ]
    for name in figures:
        assert (tmp_path / "figs" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((tmp_path / "out" / "flows_2d.json").read_text())
    assert [(r["energy"], r["flow"], r["length"]) for r in results["energies"]] == [
        ("U1", "planar", 2),
        ("U1", "radial", 2),
        ("U2", "planar", 2),
        ("U2", "radial", 2),
    ]
    assert [(r["dataset"], r["flow"]) for r in results["datasets"]] == [
        ("moons", "MAF (affine)"),
        ("moons", "IAF"),
    ]
    assert [(c["flow"], c["dim"]) for c in results["costs"]] == [
        ("MAF (affine)", 2),
        ("IAF", 2),
        ("MAF (affine)", 4),
        ("IAF", 4),
    ]
    assert results["config"]["grid"] == {"lo": -5.0, "hi": 5.0, "size": 20}
    printed = capsys.readouterr().out
    assert "| moons | IAF |" in printed
    assert "| KL(q‖p), nats | planar K=2 | radial K=2 |" in printed
