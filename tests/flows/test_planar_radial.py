"""Planar and radial flows (:mod:`glowapp.flows.planar_radial`) on their own.

The registry (tests/helpers/bijections.py) runs the generic checks at moderate parameters; here:
the invertibility constraints hold for arbitrary (large) parameter values, the numerical planar
inverse next to its constraint's edge, the closed-form radial inverse near and far from its
centre, and the planar solver's error on inputs it cannot solve.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from helpers.bijections import jacobian_logdets
from torch import Tensor, nn

from glowapp.flows import PlanarFlow, RadialFlow

pytestmark = pytest.mark.usefixtures("single_thread")


def randomise(layer: nn.Module, scale: float) -> nn.Module:
    """Every parameter replaced by ``N(0, scale²)`` draws (float64)."""
    layer.double()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(scale * torch.randn_like(p))
    return layer


def assert_bijection(layer: nn.Module, x: Tensor, atol: float) -> None:
    """Round trip to ``atol`` (relative to ``1 + |x|``), log-dets opposite and equal to the
    autograd Jacobian's (float64)."""
    with torch.no_grad():
        y, ld = layer(x)
        x2, ld_inv = layer.inverse(y)
    assert float(((x2 - x).abs() / (1 + x.abs())).max()) < atol
    torch.testing.assert_close(ld_inv, -ld, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ld, jacobian_logdets(lambda v: layer(v)[0], x), rtol=1e-8, atol=1e-8)


def planar_constraint_holds(layer: PlanarFlow) -> bool:
    """``wᵀû ≥ −1``, with the returned ``c`` equal to the product ``wᵀû``."""
    u_hat, c = layer.u_hat()
    return float(c) >= -1 and abs(float(layer.w @ u_hat - c)) < 1e-9 * (1 + abs(float(c)))


def radial_constraint_holds(layer: RadialFlow) -> bool:
    """``α > 0`` and ``β ≥ −α``."""
    alpha, beta = layer.coefficients()
    return float(alpha) > 0 and float(beta) >= -float(alpha)


@pytest.mark.parametrize(
    ("flow", "constraint_holds"),
    [(PlanarFlow, planar_constraint_holds), (RadialFlow, radial_constraint_holds)],
    ids=["planar", "radial"],
)
@pytest.mark.parametrize("scale", [1.0, 5.0, 20.0])
def test_constraint_holds_for_arbitrary_parameters(
    flow: type, constraint_holds: Callable[[nn.Module], bool], scale: float
) -> None:
    """The paper's constraint holds for any parameter values, and the map stays an exact
    bijection (inputs spread like the parameters, so they reach every regime of the map)."""
    torch.manual_seed(int(scale))
    for _ in range(10):
        layer = randomise(flow(3), scale)
        with torch.no_grad():
            assert constraint_holds(layer)
        assert_bijection(layer, scale * torch.randn(16, 3, dtype=torch.float64), 1e-9)


def test_planar_inverse_next_to_the_constraint() -> None:
    """With ``wᵀû = −1 + 4.5e-5`` the map is nearly flat around ``wᵀx + b = 0`` (slope 4.5e-5
    along ``w``): Newton steps overshoot there and the bracket must catch them; the inverse is
    still accurate to the conditioning (``eps / slope``)."""
    layer = PlanarFlow(2).double()
    w = torch.tensor([1.0, 0.5], dtype=torch.float64)
    with torch.no_grad():
        layer.w.copy_(w)
        layer.u.copy_(-10.0 * w / (w @ w))  # wᵀu = −10, wᵀû = −1 + softplus(−10)
        layer.b.zero_()
    along = torch.linspace(-3, 3, 41, dtype=torch.float64).unsqueeze(1) * w  # includes wᵀx = 0
    across = torch.randn(41, 1, dtype=torch.float64) * torch.tensor([-0.5, 1.0], dtype=w.dtype)
    x = along + across
    with torch.no_grad():
        y, ld = layer(x)
        x2, ld_inv = layer.inverse(y)
    assert float(ld.min()) < -9.9  # log(softplus(−10)) ≈ −10.0 at the flat point
    assert float((x2 - x).abs().max()) < 1e-9
    torch.testing.assert_close(ld_inv, -ld, rtol=1e-9, atol=1e-9)


def test_radial_inverse_near_and_far_from_the_centre() -> None:
    """The closed-form radius is exact from ``r = 1e-8`` to ``r = 1e4``, for contracting
    (``β ≈ −α``: ``1 + βh ≈ 1e-13/α`` at the centre) and expanding (``β ≫ α``) maps.

    ``x₀ = 0`` here: elsewhere ``y − x₀`` of a point at ``r = 1e-8`` from a strongly contracting
    centre is below the rounding of ``x₀`` itself, so no inverse could recover it."""
    torch.manual_seed(0)
    radii = torch.logspace(-8, 4, 25, dtype=torch.float64).unsqueeze(1)
    for beta_raw in (-30.0, 0.0, 5.0):
        layer = RadialFlow(3).double()
        with torch.no_grad():
            layer.beta_raw.fill_(beta_raw)
            layer.x0.zero_()
        x = radii * torch.nn.functional.normalize(torch.randn(25, 3, dtype=torch.float64), dim=1)
        with torch.no_grad():
            y, ld = layer(x)
            x2, ld_inv = layer.inverse(y)
        assert float(((x2 - x).abs() / radii).max()) < 1e-8, beta_raw
        torch.testing.assert_close(ld_inv, -ld, rtol=1e-9, atol=1e-9)


def test_planar_inverse_reports_what_it_cannot_solve() -> None:
    """A NaN input never meets the tolerance: a clear error names the iteration limit."""
    layer = PlanarFlow(2)
    with pytest.raises(RuntimeError, match="did not converge in 100 iterations"):
        layer.inverse(torch.tensor([[0.0, float("nan")]]))


def test_dimensions_are_validated() -> None:
    with pytest.raises(ValueError, match="dim >= 1"):
        PlanarFlow(0)
    with pytest.raises(ValueError, match="dim >= 1"):
        RadialFlow(0)
