"""2-D models (a 1×1×2 "image"): the density ``exp(log_prob)`` integrates to one."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from helpers.bijections import perturb
from helpers.density import sample_box, trapezoid_2d
from helpers.models import unflatten
from torch import Tensor

from glowapp.models import NICE, MultiScaleFlow, RealNVP

pytestmark = pytest.mark.usefixtures("single_thread")

TWO_D: list[tuple[str, Callable[[], MultiScaleFlow]]] = [
    ("nice", lambda: NICE(1, image_size=(1, 2), couplings=4, hidden=4)),
    ("realnvp", lambda: RealNVP(1, scales=1, hidden=4, blocks=1, image_size=(1, 2))),
]


@pytest.mark.parametrize("make", [t[1] for t in TWO_D], ids=[t[0] for t in TWO_D])
def test_two_dim_model_density_integrates_to_one(make: Callable[[], MultiScaleFlow]) -> None:
    """``exp(log_prob)`` of a 1×1×2 "image" model integrates to 1 (trapezoid, 400×400)."""
    model = make()
    perturb(model, 0.1)
    model.eval().double()

    def decode(eps: Tensor) -> Tensor:
        return model.decode(unflatten(model, eps)).view(-1, 2)

    lo, hi = sample_box(decode)
    mass = trapezoid_2d(lambda x: model.log_prob(x.view(-1, 1, 1, 2)), lo, hi, 400)
    assert abs(mass - 1.0) < 1e-5, mass  # measured: 2e-7 (NICE), 9e-7 (RealNVP)
