"""Tiny models: ``encode``'s and ``decode``'s log-dets equal ``log|det J|`` of the float64 autograd
Jacobian of ``x -> (ε_1, …, ε_L)`` and of its inverse."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from helpers.bijections import assert_rel_close, jacobian_logdets
from helpers.models import flat_latents, images, prepare, unflatten

from glowapp.models import NICE, Glow, MultiScaleFlow, RealNVP

pytestmark = pytest.mark.usefixtures("single_thread")

TINY: list[tuple[str, Callable[[], MultiScaleFlow]]] = [
    (
        "glow-affine-lu",
        lambda: Glow(1, levels=2, steps=2, hidden=8, coupling="affine", permutation="lu"),
    ),
    (
        "glow-additive-conv",
        lambda: Glow(1, levels=2, steps=2, hidden=8, coupling="additive", permutation="conv"),
    ),
    (
        "glow-spline-shuffle",
        lambda: Glow(1, levels=2, steps=2, hidden=8, coupling="spline", permutation="shuffle"),
    ),
    ("realnvp", lambda: RealNVP(1, scales=2, hidden=8, blocks=1)),
    ("realnvp-bn", lambda: RealNVP(1, scales=2, hidden=8, blocks=1, batch_norm=True)),
    ("nice", lambda: NICE(1, image_size=4, couplings=4, hidden=8)),
]


@pytest.mark.parametrize("make", [t[1] for t in TINY], ids=[t[0] for t in TINY])
def test_logdet_matches_jacobian(make: Callable[[], MultiScaleFlow]) -> None:
    """encode's log-det is ``log|det ∂(ε_1..ε_L)/∂x|`` and decode's that of the inverse (float64)."""
    model = prepare(make(), images(16, 1, 4), scale=0.2).double()
    x = images(2, 1, 4, dtype=torch.float64)
    latents, logdet = model.encode(x)
    ref = jacobian_logdets(lambda inp: flat_latents(model.encode(inp)[0]), x)
    assert_rel_close(logdet, ref, 1e-4)
    assert float(ref.abs().min()) > 0.1, "tiny model is (nearly) volume preserving"

    z = flat_latents(latents).detach()
    _, logdet_dec = model.decode_with_logdet(unflatten(model, z))
    ref_dec = jacobian_logdets(lambda inp: model.decode(unflatten(model, inp)), z)
    assert_rel_close(logdet_dec, ref_dec, 1e-4)
