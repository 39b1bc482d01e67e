"""The rational-quadratic spline transform (:mod:`glowapp.flows.spline`) on its own.

The shared bijection checks (tests/flows/test_bijections.py) run it inside couplings; here: the identity at
zero parameters, monotonicity, identity tails, exact inversion at the knots, and round trips and
derivatives for many random parameter sets, large magnitudes included (float64).
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from glowapp.flows.coupling import make_transform
from glowapp.flows.spline import RationalQuadraticSpline

pytestmark = pytest.mark.usefixtures("single_thread")

BOUND = 3.0


def params_like(spline: RationalQuadraticSpline, x: Tensor, scale: float) -> Tensor:
    """Random raw parameters ``[B, C, P, H, W]`` of magnitude ~``scale`` for ``x`` ``[B, C, H, W]``."""
    b, c, h, w = x.shape
    return scale * torch.randn(b, c, spline.params_per_dim, h, w, dtype=x.dtype)


def elementwise_derivative(spline: RationalQuadraticSpline, x: Tensor, params: Tensor) -> Tensor:
    """``g'(x)`` by autograd (the map is elementwise, so the gradient of the sum is the diagonal)."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(spline(x, params)[0].sum(), x)
    return grad


def test_zero_parameters_give_the_identity() -> None:
    spline = RationalQuadraticSpline(bins=8, tail_bound=BOUND)
    x = torch.linspace(-5, 5, 1001, dtype=torch.float64).view(1, 1, 1, -1)
    y, ld = spline(x, torch.zeros(1, 1, spline.params_per_dim, 1, x.shape[-1], dtype=torch.float64))
    assert float((y - x).abs().max()) < 1e-12
    assert float(ld.abs().max()) < 1e-12


@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0, 30.0, 1e3])
def test_monotonic_identity_tails_and_round_trip(scale: float) -> None:
    """For 200 random parameter sets per scale: strictly increasing on a fine grid, the identity
    outside ``[−B, B]``, inverse∘forward = id, and the log-det equals log of the autograd slope."""
    torch.manual_seed(int(scale * 10))
    spline = RationalQuadraticSpline(bins=8, tail_bound=BOUND)
    x = torch.linspace(-4.5, 4.5, 901, dtype=torch.float64).expand(200, 1, 1, 901).contiguous()
    # One spline per row, evaluated on the whole grid along W.
    params = params_like(spline, x[..., :1], scale).expand(-1, -1, -1, -1, 901)
    with torch.no_grad():
        y, ld = spline(x, params)
        x2, ld_inv = spline.inverse(y, params)
    assert torch.isfinite(y).all() and torch.isfinite(ld).all()
    assert bool((y.diff(dim=-1) > 0).all()), "not strictly increasing"
    tails = x.abs() > BOUND
    assert torch.equal(y[tails], x[tails]) and bool((ld[tails] == 0).all())
    assert float(y.abs().max()) <= 4.5
    assert float((x2 - x).abs().max()) < 1e-6
    # With large parameters, narrow-and-flat bins next to steep knots give slopes down to ~1e-9,
    # where log g' varies so fast that float64 rounding of ξ shows in the 5th decimal.
    assert float((ld + ld_inv).abs().max()) < (1e-7 if scale <= 5 else 1e-3)
    inside = ~tails
    slope = elementwise_derivative(spline, x, params)
    assert torch.allclose(ld[inside], slope[inside].log(), rtol=1e-8, atol=1e-8)


def test_inverse_is_exact_at_the_knots() -> None:
    """Every knot ``x_k`` maps to ``y_k`` and back, including the ends ``±B``."""
    torch.manual_seed(0)
    spline = RationalQuadraticSpline(bins=8, tail_bound=BOUND)
    shape = (16, 1, 1, 1)
    params = params_like(spline, torch.zeros(shape, dtype=torch.float64), 2.0)
    xk, yk, _ = spline._knots(params)  # [16, 1, 1, 1, K + 1]
    x = xk.squeeze(1).squeeze(1).permute(0, 2, 1).reshape(16, 1, 1, 9)  # knots along W
    y_expected = yk.squeeze(1).squeeze(1).permute(0, 2, 1).reshape(16, 1, 1, 9)
    p = params.expand(16, 1, spline.params_per_dim, 1, 9)
    with torch.no_grad():
        y, _ = spline(x, p)
        x2, _ = spline.inverse(y_expected, p)
    assert float((y - y_expected).abs().max()) < 1e-12
    assert float((x2 - x).abs().max()) < 1e-12
    assert float(x[..., 0].min()) == -BOUND and float(x[..., -1].max()) == BOUND


def test_derivative_is_one_at_the_bounds() -> None:
    """The spline meets the identity tails with slope 1 (a continuous first derivative)."""
    torch.manual_seed(1)
    spline = RationalQuadraticSpline(bins=5, tail_bound=BOUND)
    x = torch.tensor([-BOUND, BOUND], dtype=torch.float64).expand(32, 1, 1, 2).contiguous()
    _, ld = spline(x, params_like(spline, x, 3.0))
    assert float(ld.abs().max()) < 1e-12


def test_float32_under_autocast() -> None:
    """bf16 parameters (an autocast conditioner) still give a float32 data path and log-det."""
    spline = RationalQuadraticSpline()
    x = torch.randn(2, 3, 4, 4)
    params = params_like(spline, x, 0.5).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, ld = spline(x, params)
        x2, _ = spline.inverse(y, params)
    assert y.dtype == ld.dtype == x2.dtype == torch.float32
    assert float((x2 - x).abs().max()) < 1e-4


def test_options_and_validation() -> None:
    spline = make_transform("spline", spline_bins=4, spline_bound=5.0)
    assert isinstance(spline, RationalQuadraticSpline)
    assert spline.params_per_dim == 3 * 4 - 1 and spline.tail_bound == 5.0
    with pytest.raises(ValueError, match="at least 1 bin"):
        RationalQuadraticSpline(bins=0)
    with pytest.raises(ValueError, match="tail bound must be positive"):
        RationalQuadraticSpline(tail_bound=0.0)
    with pytest.raises(ValueError, match="coupling must be one of"):
        make_transform("quadratic")
