"""The four 2-D energy densities of Rezende & Mohamed (2015), Table 1: ``p(z) ∝ exp(−U(z))``.

With ``w₁(z) = sin(2π z₁ / 4)``, ``w₂(z) = 3 exp(−½((z₁ − 1)/0.6)²)``,
``w₃(z) = 3 σ((z₁ − 1)/0.3)``:

* ``U₁(z) = ½((‖z‖ − 2)/0.4)² − ln(e^{−½((z₁ − 2)/0.6)²} + e^{−½((z₁ + 2)/0.6)²})``
* ``U₂(z) = ½((z₂ − w₁(z))/0.4)²``
* ``U₃(z) = −ln(e^{−½((z₂ − w₁(z))/0.35)²} + e^{−½((z₂ − w₁(z) + w₂(z))/0.35)²})``
* ``U₄(z) = −ln(e^{−½((z₂ − w₁(z))/0.4)²} + e^{−½((z₂ − w₁(z) + w₃(z))/0.35)²})``

U₂–U₄ do not depend on ``|z₁|`` growing (they are periodic or constant along ``z₁``), so
``exp(−U)`` has infinite mass on the plane: the paper shows them on the window
``[−4, 4]²``. To make them proper densities that a reverse-KL fit can reach (and whose
normaliser the grid can compute), U₂–U₄ here add a wall that is zero inside the window,
``½((|z₁| − 4)₊ / 0.2)²``. U₁ (a ring) is normalisable as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

WINDOW = 4.0  # the paper's plots show [−4, 4]²; the wall of U₂–U₄ starts there
WALL_WIDTH = 0.2


def _w1(z: Tensor) -> Tensor:
    return torch.sin(2 * math.pi * z[:, 0] / 4)


def _w2(z: Tensor) -> Tensor:
    return 3 * torch.exp(-0.5 * ((z[:, 0] - 1) / 0.6) ** 2)


def _w3(z: Tensor) -> Tensor:
    return 3 * torch.sigmoid((z[:, 0] - 1) / 0.3)


def _wall(z: Tensor) -> Tensor:
    """``½((|z₁| − 4)₊ / 0.2)²``: zero on the paper's window, a Gaussian edge outside it."""
    return 0.5 * ((z[:, 0].abs() - WINDOW).clamp_min(0) / WALL_WIDTH) ** 2


def _neg_logsumexp(a: Tensor, b: Tensor) -> Tensor:
    """``−ln(eᵃ + eᵇ)``, computed without overflow."""
    return -torch.logaddexp(a, b)


def energy_u1(z: Tensor) -> Tensor:
    """U₁, a ring of radius 2 split into two lobes: ``[B, 2] -> [B]``."""
    ring = 0.5 * ((z.norm(dim=1) - 2) / 0.4) ** 2
    lobes = _neg_logsumexp(-0.5 * ((z[:, 0] - 2) / 0.6) ** 2, -0.5 * ((z[:, 0] + 2) / 0.6) ** 2)
    return ring + lobes


def energy_u2(z: Tensor) -> Tensor:
    """U₂, a sine-shaped band: ``[B, 2] -> [B]``."""
    return 0.5 * ((z[:, 1] - _w1(z)) / 0.4) ** 2 + _wall(z)


def energy_u3(z: Tensor) -> Tensor:
    """U₃, the sine band and a second band that splits from it around ``z₁ = 1``: ``[B, 2] -> [B]``."""
    w1 = _w1(z)
    a = -0.5 * ((z[:, 1] - w1) / 0.35) ** 2
    b = -0.5 * ((z[:, 1] - w1 + _w2(z)) / 0.35) ** 2
    return _neg_logsumexp(a, b) + _wall(z)


def energy_u4(z: Tensor) -> Tensor:
    """U₄, the sine band and a copy shifted down by a sigmoid step: ``[B, 2] -> [B]``."""
    w1 = _w1(z)
    a = -0.5 * ((z[:, 1] - w1) / 0.4) ** 2
    b = -0.5 * ((z[:, 1] - w1 + _w3(z)) / 0.35) ** 2
    return _neg_logsumexp(a, b) + _wall(z)


ENERGIES: dict[str, Callable[[Tensor], Tensor]] = {
    "U1": energy_u1,
    "U2": energy_u2,
    "U3": energy_u3,
    "U4": energy_u4,
}


def energy(name: str) -> Callable[[Tensor], Tensor]:
    """The energy ``U`` called ``name`` (``"U1"`` … ``"U4"``), a map ``[B, 2] -> [B]``."""
    if name not in ENERGIES:
        raise ValueError(f"unknown energy {name!r}: choose one of {sorted(ENERGIES)}")
    return ENERGIES[name]
