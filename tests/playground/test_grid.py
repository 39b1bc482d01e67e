"""Densities on a grid: layout of the points, and the midpoint-rule integral."""

from __future__ import annotations

import math

import pytest
import torch

from glowapp.playground.grid import Grid, integrate, log_density_on_grid, log_normaliser


def gaussian_log_density(sigma: float):
    def log_density(z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z / sigma).pow(2).sum(dim=1) - math.log(2 * math.pi * sigma**2)

    return log_density


def test_a_standard_normal_integrates_to_one_on_a_covering_grid() -> None:
    grid = Grid(-6.0, 6.0, 120)
    assert integrate(log_density_on_grid(gaussian_log_density(1.0), grid), grid) == pytest.approx(
        1.0, abs=1e-3
    )


def test_the_integral_loses_the_mass_outside_the_window() -> None:
    """N(0, 2²) on [−2, 2]²: the mass inside is erf(1/√2)² ≈ 0.466, not one."""
    grid = Grid(-2.0, 2.0, 200)
    inside = math.erf(1 / math.sqrt(2)) ** 2
    value = integrate(log_density_on_grid(gaussian_log_density(2.0), grid), grid)
    assert value == pytest.approx(inside, abs=1e-4)


def test_points_are_cell_centres_with_z2_on_rows() -> None:
    grid = Grid(-1.0, 1.0, 4)
    assert torch.allclose(
        grid.axis(), torch.tensor([-0.75, -0.25, 0.25, 0.75], dtype=torch.float64)
    )
    image = log_density_on_grid(lambda z: z[:, 0] + 10 * z[:, 1], grid)
    assert image.shape == (4, 4)
    assert float(image[0, 3]) == pytest.approx(0.75 - 7.5)  # row i ↔ z₂ = axis[i], column j ↔ z₁
    assert grid.cell_area == pytest.approx(0.25)


def test_batches_do_not_change_the_values() -> None:
    grid = Grid(-3.0, 3.0, 30)
    fn = gaussian_log_density(1.0)
    assert torch.equal(log_density_on_grid(fn, grid, 7), log_density_on_grid(fn, grid, 10_000))


def test_log_normaliser_of_a_gaussian_energy() -> None:
    """∫ exp(−½‖z‖²) = 2π."""
    grid = Grid(-7.0, 7.0, 140)
    assert log_normaliser(lambda z: 0.5 * z.pow(2).sum(dim=1), grid) == pytest.approx(
        math.log(2 * math.pi), abs=1e-6
    )


def test_bad_grids_and_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="hi > lo"):
        Grid(1.0, -1.0, 10)
    with pytest.raises(ValueError, match="expected log-values of shape"):
        integrate(torch.zeros(3, 3), Grid(-1.0, 1.0, 4))
