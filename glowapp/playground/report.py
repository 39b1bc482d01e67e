"""The playground's numbers as JSON and as markdown tables."""

from __future__ import annotations

import dataclasses

import torch

from glowapp.playground.costs import Cost
from glowapp.playground.experiments import DatasetFit, EnergyFit, PlaygroundConfig


def results_json(
    config: PlaygroundConfig,
    energy_fits: list[EnergyFit],
    dataset_fits: list[DatasetFit],
    costs: list[Cost],
) -> dict:
    """Everything measured, as plain data (nats and seconds; no tensors)."""
    return {
        "config": dataclasses.asdict(config),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "energies": [
            {
                "energy": f.energy,
                "flow": f.flow,
                "length": f.length,
                "kl_nats": f.kl,
                "integral": f.integral,
                "fit_seconds": f.fit_seconds,
            }
            for f in energy_fits
        ],
        "datasets": [
            {
                "dataset": f.dataset,
                "flow": f.flow,
                "test_log_likelihood_nats": f.test_log_likelihood,
                "integral": f.integral,
                "fit_seconds": f.fit_seconds,
                "sample_seconds": f.sample_seconds,
                "density_seconds": f.density_seconds,
            }
            for f in dataset_fits
        ],
        "costs": [dataclasses.asdict(c) for c in costs],
    }


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def energy_table(fits: list[EnergyFit]) -> str:
    """KL(q‖p) in nats: one row per energy, one column per flow kind and length."""
    columns = list(dict.fromkeys((f.flow, f.length) for f in fits))
    kl = {(f.energy, f.flow, f.length): f.kl for f in fits}
    energies = list(dict.fromkeys(f.energy for f in fits))
    rows = [[e] + [f"{kl[(e, *c)]:.3f}" for c in columns] for e in energies]
    return _table(["KL(q‖p), nats"] + [f"{kind} K={k}" for kind, k in columns], rows)


def dataset_table(fits: list[DatasetFit], n: int) -> str:
    """Test log-likelihood, grid integral and costs (``n`` points at dim 2) per data set and flow."""
    header = [
        "data set",
        "flow",
        "test log p (nats)",
        "∫p on grid",
        "fit (s)",
        f"sample {n:,} (s)",
        f"density {n:,} (s)",
    ]
    rows = [
        [
            f.dataset,
            f.flow,
            f"{f.test_log_likelihood:.3f}",
            f"{f.integral:.4f}",
            f"{f.fit_seconds:.1f}",
            f"{f.sample_seconds:.4f}",
            f"{f.density_seconds:.4f}",
        ]
        for f in fits
    ]
    return _table(header, rows)


def cost_table(costs: list[Cost]) -> str:
    """Seconds to sample and to evaluate the density, one row per flow, two columns per dim."""
    dims = list(dict.fromkeys(c.dim for c in costs))
    flows = list(dict.fromkeys(c.flow for c in costs))
    by_key = {(c.flow, c.dim): c for c in costs}
    header = ["flow"] + [f"{what}, D={d} (s)" for d in dims for what in ("sample", "density")]
    rows = [
        [flow]
        + [
            f"{seconds:.4f}"
            for d in dims
            for seconds in (by_key[(flow, d)].sample_seconds, by_key[(flow, d)].density_seconds)
        ]
        for flow in flows
    ]
    n = costs[0].n if costs else 0
    return f"Time for {n:,} points, one batch, {torch.get_num_threads()} thread(s):\n\n" + _table(
        header, rows
    )


def markdown(
    energy_fits: list[EnergyFit], dataset_fits: list[DatasetFit], costs: list[Cost], n: int
) -> str:
    """The three tables, separated by blank lines."""
    return "\n\n".join(
        [energy_table(energy_fits), dataset_table(dataset_fits, n), cost_table(costs)]
    )
