"""Numerical integration of 2-D densities, for "the density integrates to one" tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def trapezoid_2d(log_density: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor, n: int) -> float:
    """Trapezoid rule for ``∫∫ exp(log_density(x)) dx`` over the box ``[lo, hi]`` on an n×n grid.

    ``log_density`` maps points ``[N, 2]`` (float64) to ``[N]``. The density must be negligible
    (< 1e-6 of its maximum) on the box's edge, else the box is too small and the test fails.
    """
    u = torch.linspace(float(lo[0]), float(hi[0]), n, dtype=torch.float64)
    v = torch.linspace(float(lo[1]), float(hi[1]), n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(u, v, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        dens = log_density(grid).double().exp().reshape(n, n)
    edge = torch.cat([dens[0], dens[-1], dens[:, 0], dens[:, -1]]).max()
    assert float(edge) < 1e-6 * float(dens.max()), (
        "box too small: density not negligible at its edge"
    )
    return float(torch.trapezoid(torch.trapezoid(dens, v, dim=1), u))


def sample_box(decode: Callable[[Tensor], Tensor], margin: float = 1.0) -> tuple[Tensor, Tensor]:
    """A box holding a 2-D flow's mass: the range of 4000 decoded standard-normal latents
    ``[4000, 2]`` (float64), widened by ``margin`` times its width on each side."""
    with torch.no_grad():
        pts = decode(torch.randn(4000, 2, dtype=torch.float64)).double()
    lo, hi = pts.min(0).values, pts.max(0).values
    return lo - margin * (hi - lo), hi + margin * (hi - lo)
