"""Densities on a square grid of the plane, and their integral (the midpoint rule).

A normalised density integrates to one over the plane; on the window ``[lo, hi]²`` the midpoint
sum ``Σ p(cell centre) · cell area`` comes to one minus the mass outside the window (plus the
rule's error, ``O(h²)`` for a smooth density with cell side ``h``). Choosing a window that
covers the mass makes ``|∫ − 1|`` small: that is the check that a flow's log-det is right.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Grid:
    """``size × size`` cells tiling ``[lo, hi]²``; points are the cell centres."""

    lo: float = -4.0
    hi: float = 4.0
    size: int = 200

    def __post_init__(self) -> None:
        if not self.hi > self.lo or self.size < 1:
            raise ValueError(f"a grid needs hi > lo and size ≥ 1, got {self}")

    @property
    def step(self) -> float:
        """The side ``h = (hi − lo) / size`` of one cell."""
        return (self.hi - self.lo) / self.size

    @property
    def cell_area(self) -> float:
        return self.step**2

    def axis(self) -> Tensor:
        """Cell-centre coordinates along one axis: ``[size]``, ``lo + (i + ½)·h``."""
        return self.lo + (torch.arange(self.size, dtype=torch.float64) + 0.5) * self.step

    def points(self) -> Tensor:
        """All cell centres ``[size², 2]`` float32, row-major: point ``i·size + j`` is
        ``(axis[j], axis[i])``, so ``values.view(size, size)`` is an image with ``z₂`` on rows."""
        y, x = torch.meshgrid(self.axis(), self.axis(), indexing="ij")
        return torch.stack([x.flatten(), y.flatten()], dim=1).float()


def log_density_on_grid(
    log_density: Callable[[Tensor], Tensor], grid: Grid, batch_size: int = 10_000
) -> Tensor:
    """``log_density`` (``[B, 2] -> [B]``) at every cell centre, as a ``[size, size]`` image
    (``z₂`` on rows, ``z₁`` on columns), evaluated in batches without gradients."""
    points = grid.points()
    with torch.no_grad():
        values = [log_density(chunk) for chunk in points.split(batch_size)]
    return torch.cat(values).view(grid.size, grid.size)


def integrate(log_values: Tensor, grid: Grid) -> float:
    """``Σ exp(log_values) · cell area``: the midpoint-rule integral of a density given as a
    ``[size, size]`` image of log-values on ``grid`` (summed in log space, no overflow)."""
    if log_values.shape != (grid.size, grid.size):
        raise ValueError(
            f"expected log-values of shape {(grid.size, grid.size)} for {grid}, "
            f"got {tuple(log_values.shape)}"
        )
    total = torch.logsumexp(log_values.double().flatten(), dim=0)
    return float(torch.exp(total) * grid.cell_area)


def log_normaliser(energy: Callable[[Tensor], Tensor], grid: Grid) -> float:
    """``log Z = log ∫ exp(−U)`` over ``grid`` (midpoint rule), for an energy ``U``."""
    return math.log(integrate(log_density_on_grid(lambda z: -energy(z), grid), grid))
