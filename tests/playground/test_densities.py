"""The energies U₁–U₄ (Rezende & Mohamed 2015, Table 1): shapes, values, normalisability."""

from __future__ import annotations

import math

import pytest
import torch

from glowapp.playground.densities import ENERGIES, energy
from glowapp.playground.grid import Grid, log_normaliser

W3_AT_3 = 3 / (1 + math.exp(-2 / 0.3))  # w₃(z) at z₁ = 3; U₄'s lower band is z₂ = w₁ − w₃


@pytest.mark.parametrize("name", list(ENERGIES))
def test_energy_is_finite_with_one_value_per_point(name: str) -> None:
    z = 10 * torch.randn(500, 2)
    u = energy(name)(z)
    assert u.shape == (500,)
    assert bool(torch.isfinite(u).all())


@pytest.mark.parametrize(
    ("name", "point", "expected"),
    [
        ("U1", (2.0, 0.0), -math.log1p(math.exp(-0.5 * (4 / 0.6) ** 2))),  # on the ring, a lobe
        ("U1", (0.0, 0.0), 0.5 * (2 / 0.4) ** 2 - math.log(2 * math.exp(-0.5 * (2 / 0.6) ** 2))),
        ("U2", (1.0, 1.0), 0.0),  # on the sine: w₁(1) = sin(π/2) = 1
        ("U2", (0.0, 0.4), 0.5),  # one band width off the sine
        (
            "U3",
            (1.0, -2.0),
            -math.log1p(math.exp(-0.5 * (3 / 0.35) ** 2)),
        ),  # lower band (w₂(1) = 3)
        ("U4", (3.0, -1.0 - W3_AT_3), -math.log1p(math.exp(-0.5 * (W3_AT_3 / 0.4) ** 2))),
        ("U2", (5.0, 1.0), 0.5 * (1.0 / 0.2) ** 2),  # on the sine (w₁(5) = 1): the wall only
    ],
)
def test_energy_values(name: str, point: tuple[float, float], expected: float) -> None:
    value = energy(name)(torch.tensor([point], dtype=torch.float64))
    assert float(value) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name", list(ENERGIES))
def test_energies_have_finite_mass_inside_the_window(name: str) -> None:
    """log Z is the same on [−5, 5]² and [−7, 7]²: no mass escapes (U₂–U₄ thanks to the wall)."""
    inner = log_normaliser(energy(name), Grid(-5.0, 5.0, 250))
    outer = log_normaliser(energy(name), Grid(-7.0, 7.0, 350))
    assert math.isfinite(inner)
    assert inner == pytest.approx(outer, abs=1e-4)


def test_unknown_energy_names_the_choices() -> None:
    with pytest.raises(ValueError, match="U1"):
        energy("U5")
