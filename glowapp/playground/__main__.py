"""``python -m glowapp.playground``: run the full 2-D playground, write its figures and table.

Writes ``<figures>/{energies,energies_samples,datasets,datasets_samples}.png`` and the JSON
results, and prints the markdown tables. One torch thread by default (``--threads``), so the
times are comparable between runs and machines. ``--quick`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from glowapp.playground.datasets import sample_dataset
from glowapp.playground.experiments import (
    PlaygroundConfig,
    fit_datasets,
    fit_energies,
    measure_costs,
    true_log_densities,
)
from glowapp.playground.plots import dataset_figures, energy_figures
from glowapp.playground.report import markdown, results_json

QUICK = PlaygroundConfig(kl_steps=20, ml_steps=20, train_size=1000, test_size=1000, samples=1000)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m glowapp.playground", description=__doc__)
    parser.add_argument(
        "--figures", type=Path, default=Path("docs/flows_2d"), help="folder for the PNGs"
    )
    parser.add_argument(
        "--results", type=Path, default=Path("docs/results/flows_2d.json"), help="JSON file"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="a few steps per fit (smoke test)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = QUICK if args.quick else PlaygroundConfig()
    energy_fits = fit_energies(config, print)
    dataset_fits = fit_datasets(config, print)
    costs = measure_costs(config, print)

    data = {name: sample_dataset(name, config.samples, config.seed) for name in config.datasets}
    figures = energy_figures(true_log_densities(config), energy_fits, config.grid)
    figures |= dataset_figures(data, dataset_fits, config.grid)
    args.figures.mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(args.figures / f"{name}.png", dpi=80)
        print(f"wrote {args.figures / f'{name}.png'}")

    args.results.parent.mkdir(parents=True, exist_ok=True)
    results = results_json(config, energy_fits, dataset_fits, costs)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.results}\n")
    print(markdown(energy_fits, dataset_fits, costs, config.samples))


if __name__ == "__main__":
    main()
