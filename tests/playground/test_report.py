"""The playground's tables, JSON and figures, from hand-made results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from glowapp.playground import costs
from glowapp.playground.costs import Cost, fastest_seconds
from glowapp.playground.experiments import DatasetFit, EnergyFit, PlaygroundConfig
from glowapp.playground.grid import Grid
from glowapp.playground.plots import dataset_figures, energy_figures
from glowapp.playground.report import cost_table, dataset_table, energy_table, results_json

GRID = Grid(-5.0, 5.0, 10)
IMAGE = torch.zeros(10, 10)
POINTS = torch.randn(50, 2)

ENERGY_FITS = [
    EnergyFit(
        e, kind, k, kl=0.1 * k, integral=1.0, fit_seconds=1.0, log_density=IMAGE, samples=POINTS
    )
    for e in ("U1", "U2")
    for kind in ("planar", "radial")
    for k in (2, 8)
]
DATASET_FITS = [
    DatasetFit("moons", flow, -2.5, 0.999, 3.0, 0.25, 0.125, log_density=IMAGE, samples=POINTS)
    for flow in ("MAF (affine)", "IAF")
]
COSTS = [
    Cost(flow, dim, 100, 0.5 * dim, 0.25) for dim in (2, 16) for flow in ("MAF (affine)", "IAF")
]


def test_energy_table_has_a_row_per_energy_and_a_column_per_flow() -> None:
    lines = energy_table(ENERGY_FITS).splitlines()
    assert lines[0] == "| KL(q‖p), nats | planar K=2 | planar K=8 | radial K=2 | radial K=8 |"
    assert lines[2] == "| U1 | 0.200 | 0.800 | 0.200 | 0.800 |"
    assert len(lines) == 4


def test_dataset_and_cost_tables() -> None:
    table = dataset_table(DATASET_FITS, 10_000)
    assert "| sample 10,000 (s) | density 10,000 (s) |" in table.splitlines()[0]
    assert "| moons | IAF | -2.500 | 0.9990 | 3.0 | 0.2500 | 0.1250 |" in table
    costs = cost_table(COSTS).splitlines()
    assert (
        costs[2]
        == "| flow | sample, D=2 (s) | density, D=2 (s) | sample, D=16 (s) | density, D=16 (s) |"
    )
    assert costs[4] == "| MAF (affine) | 1.0000 | 0.2500 | 8.0000 | 0.2500 |"


def test_results_are_plain_json() -> None:
    results = json.loads(
        json.dumps(results_json(PlaygroundConfig(), ENERGY_FITS, DATASET_FITS, COSTS))
    )
    assert results["energies"][0] == {
        "energy": "U1",
        "flow": "planar",
        "length": 2,
        "kl_nats": 0.2,
        "integral": 1.0,
        "fit_seconds": 1.0,
    }
    assert results["datasets"][1]["test_log_likelihood_nats"] == -2.5
    assert results["costs"][3] == {
        "flow": "IAF",
        "dim": 16,
        "n": 100,
        "sample_seconds": 8.0,
        "density_seconds": 0.25,
    }


def test_figures_have_a_panel_per_fit(tmp_path: Path) -> None:
    truth = {"U1": IMAGE, "U2": IMAGE}
    figures = energy_figures(truth, ENERGY_FITS, GRID)
    figures |= dataset_figures({"moons": POINTS}, DATASET_FITS, GRID)
    visible = {name: sum(ax.axison for ax in f.axes) for name, f in figures.items()}
    assert visible == {
        "energies": 2 * (1 + 4),  # the target, then 2 kinds × 2 lengths
        "energies_samples": 2 * 4,
        "datasets": 2,
        "datasets_samples": 1 + 2,  # the data, then each flow
    }
    figures["energies"].savefig(tmp_path / "energies.png")
    assert (tmp_path / "energies.png").read_bytes()[:4] == b"\x89PNG"


def test_fastest_seconds_warms_up_then_keeps_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a scripted clock: the first (warm-up) call is not timed, and of the timed calls the
    fastest is returned, not their mean, the last or the slowest."""
    durations = iter([0.5, 3.0, 1.0, 2.0, 5.0])  # warm-up (fastest of all, untimed), 4 timed
    clock = [100.0]

    def call() -> None:
        clock[0] += next(durations)

    monkeypatch.setattr(costs.time, "perf_counter", lambda: clock[0])
    assert fastest_seconds(call, repeats=4) == 1.0
    assert next(durations, None) is None  # exactly 5 calls
