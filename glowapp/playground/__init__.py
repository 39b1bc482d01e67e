"""The 2-D playground: the flow family fitted to 2-D densities and point sets.

* :mod:`~glowapp.playground.densities`: Rezende & Mohamed's energies U₁–U₄;
* :mod:`~glowapp.playground.datasets`: two moons, rings, checkerboard, pinwheel;
* :mod:`~glowapp.playground.flow` and :mod:`~glowapp.playground.models`: :class:`VectorFlow`
  and the planar, radial, MAF, IAF, RealNVP and i-ResNet flows built on it;
* :mod:`~glowapp.playground.fit`: reverse-KL and maximum-likelihood training;
* :mod:`~glowapp.playground.grid`: densities on a grid and their integral;
* :mod:`~glowapp.playground.costs`: sampling and density timings;
* :mod:`~glowapp.playground.experiments`, :mod:`~glowapp.playground.report`,
  :mod:`~glowapp.playground.plots` (matplotlib): the runs, their tables and figures, used by
  ``python -m glowapp.playground`` and ``notebooks/flows_2d.ipynb``.
"""

from glowapp.playground.datasets import DATASETS, sample_dataset
from glowapp.playground.densities import ENERGIES, energy
from glowapp.playground.fit import fit_maximum_likelihood, fit_reverse_kl, mean_log_prob
from glowapp.playground.flow import VectorFlow
from glowapp.playground.grid import Grid, integrate, log_density_on_grid
from glowapp.playground.models import DENSITY_FLOWS, density_flow, energy_flow

__all__ = [
    "DATASETS",
    "DENSITY_FLOWS",
    "ENERGIES",
    "Grid",
    "VectorFlow",
    "density_flow",
    "energy",
    "energy_flow",
    "fit_maximum_likelihood",
    "fit_reverse_kl",
    "integrate",
    "log_density_on_grid",
    "mean_log_prob",
    "sample_dataset",
]
