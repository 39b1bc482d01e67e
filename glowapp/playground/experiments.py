"""The playground's experiments: reverse-KL fits of U₁–U₄, maximum-likelihood fits on the data
sets, and the sampling/density costs. The script (``python -m glowapp.playground``) and the
notebook run these same functions, at full and at small size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from glowapp.playground.costs import Cost, measure_cost
from glowapp.playground.datasets import DATASETS, sample_dataset
from glowapp.playground.densities import ENERGIES, energy
from glowapp.playground.fit import fit_maximum_likelihood, fit_reverse_kl, mean_log_prob, reverse_kl
from glowapp.playground.flow import VectorFlow
from glowapp.playground.grid import Grid, integrate, log_density_on_grid, log_normaliser
from glowapp.playground.models import DENSITY_FLOWS, density_flow, energy_flow, use_exact_logdet


@dataclass(frozen=True)
class PlaygroundConfig:
    """Sizes of a playground run; the defaults are the full run of ``python -m glowapp.playground``.

    ``grid`` is where densities are drawn and integrated: ``[−5, 5]²`` holds the mass of the
    energies (whose wall starts at 4) and of the data sets (inside ``[−4, 4]²``). ``samples``
    points are drawn for each figure and timed (in one batch, the fastest of ``timing_repeats``
    calls); ``cost_dims`` are the dimensions of the cost table.
    """

    energies: tuple[str, ...] = tuple(ENERGIES)
    energy_flows: tuple[str, ...] = ("planar", "radial")
    lengths: tuple[int, ...] = (2, 8, 32)
    kl_steps: int = 2000
    datasets: tuple[str, ...] = tuple(DATASETS)
    density_flows: tuple[str, ...] = tuple(DENSITY_FLOWS)
    ml_steps: int = 1500
    batch_size: int = 256
    train_size: int = 20_000
    test_size: int = 10_000
    samples: int = 10_000
    cost_dims: tuple[int, ...] = (2, 16)
    timing_repeats: int = 3
    grid: Grid = field(default_factory=lambda: Grid(-5.0, 5.0, 200))
    seed: int = 0


@dataclass
class EnergyFit:
    """A planar or radial flow of ``length`` layers fitted to ``exp(−U)`` by reverse KL."""

    energy: str
    flow: str
    length: int
    kl: float  # KL(q‖p) in nats, Monte Carlo on config.samples samples
    integral: float  # ∫ q over the grid
    fit_seconds: float
    log_density: Tensor = field(repr=False)  # [size, size] on the grid
    samples: Tensor = field(repr=False)  # [config.samples, 2]


@dataclass
class DatasetFit:
    """A flow fitted to a data set by maximum likelihood, with its dim-2 costs."""

    dataset: str
    flow: str
    test_log_likelihood: float  # mean log p(x) over the test points, nats
    integral: float
    fit_seconds: float
    sample_seconds: float  # config.samples samples
    density_seconds: float  # log p at config.samples points
    log_density: Tensor = field(repr=False)
    samples: Tensor = field(repr=False)


Log = Callable[[str], None]


def _quiet(message: str) -> None:
    """A :data:`Log` that prints nothing."""


def _draw(flow: VectorFlow, config: PlaygroundConfig) -> tuple[Tensor, float, Tensor]:
    """The flow's log-density on the grid, its integral, and ``config.samples`` samples."""
    flow.eval()
    log_density = log_density_on_grid(flow.log_prob, config.grid)
    samples = flow.sample(config.samples, torch.Generator().manual_seed(config.seed + 2))
    return log_density, integrate(log_density, config.grid), samples


def true_log_densities(config: PlaygroundConfig) -> dict[str, Tensor]:
    """``log p = −U − log Z`` of each energy on the grid, ``[size, size]`` each."""
    images = {}
    for name in config.energies:
        u = energy(name)
        log_z = log_normaliser(u, config.grid)
        images[name] = log_density_on_grid(lambda z, u=u: -u(z), config.grid) - log_z
    return images


def fit_energies(config: PlaygroundConfig, log: Log = _quiet) -> list[EnergyFit]:
    """Every (energy, flow kind, length) of ``config``, fitted by :func:`fit_reverse_kl`."""
    fits = []
    for name in config.energies:
        u = energy(name)
        log_z = log_normaliser(u, config.grid)
        for kind in config.energy_flows:
            for length in config.lengths:
                torch.manual_seed(config.seed)
                flow = energy_flow(kind, length)
                result = fit_reverse_kl(
                    flow, u, config.kl_steps, config.batch_size, seed=config.seed
                )
                log_density, integral, samples = _draw(flow, config)
                kl = reverse_kl(flow, u, log_z, config.samples, seed=config.seed + 1)
                fits.append(
                    EnergyFit(
                        name, kind, length, kl, integral, result.seconds, log_density, samples
                    )
                )
                log(
                    f"{name} {kind} K={length}: KL {kl:.3f} nats, ∫q {integral:.4f}, {result.seconds:.1f} s"
                )
    return fits


def fit_datasets(config: PlaygroundConfig, log: Log = _quiet) -> list[DatasetFit]:
    """Every (data set, flow) of ``config``, fitted by :func:`fit_maximum_likelihood`."""
    fits = []
    for name in config.datasets:
        train = sample_dataset(name, config.train_size, config.seed)
        test = sample_dataset(name, config.test_size, config.seed + 1)
        for flow_name in config.density_flows:
            torch.manual_seed(config.seed)
            flow = density_flow(flow_name)
            result = fit_maximum_likelihood(
                flow, train, config.ml_steps, config.batch_size, seed=config.seed
            )
            use_exact_logdet(flow)  # at dim 2: no estimator noise in the test likelihood and ∫p
            log_density, integral, samples = _draw(flow, config)
            test_ll = mean_log_prob(flow, test)
            cost = measure_cost(flow_name, flow, config.samples, config.timing_repeats)
            fits.append(
                DatasetFit(
                    name,
                    flow_name,
                    test_ll,
                    integral,
                    result.seconds,
                    cost.sample_seconds,
                    cost.density_seconds,
                    log_density,
                    samples,
                )
            )
            log(
                f"{name} {flow_name}: test log p {test_ll:.3f} nats, ∫p {integral:.4f}, {result.seconds:.1f} s"
            )
    return fits


def measure_costs(config: PlaygroundConfig, log: Log = _quiet) -> list[Cost]:
    """Sampling and density time of each maximum-likelihood flow at each of ``config.cost_dims``
    (freshly built: the cost does not depend on what was learned)."""
    costs = []
    for dim in config.cost_dims:
        for flow_name in config.density_flows:
            torch.manual_seed(config.seed)
            flow = density_flow(flow_name, dim)
            cost = measure_cost(flow_name, flow, config.samples, config.timing_repeats)
            costs.append(cost)
            log(
                f"dim {dim} {flow_name}: sample {cost.sample_seconds:.3f} s, density {cost.density_seconds:.3f} s"
            )
    return costs
