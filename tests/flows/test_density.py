"""Densities built from the layers integrate to one (float64 trapezoid rule)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.bijections import init_actnorms, perturb
from helpers.density import sample_box, trapezoid_2d
from torch import Tensor

from glowapp.flows import (
    ActNorm,
    ChannelCoupling,
    FlowSequential,
    InvConv1x1,
    LogitTransform,
    TopPrior,
    standard_normal_log_prob,
)

pytestmark = pytest.mark.usefixtures("single_thread")

LOG_2PI = math.log(2 * math.pi)


def test_layer_flow_density_integrates_to_one() -> None:
    """A 2-D flow built from our layers defines a normalised density (trapezoid, 400×400)."""
    act = ActNorm(2)
    init_actnorms(act, torch.randn(256, 2, 1, 1) * torch.tensor([2.0, 0.5]).view(1, 2, 1, 1) + 1.0)
    flow = FlowSequential([act, InvConv1x1(2), ChannelCoupling(2, 16, "affine"), TopPrior(2)])
    perturb(flow, 0.3)
    flow.eval().double()

    def log_density(x: Tensor) -> Tensor:
        eps, ld = flow(x.view(-1, 2, 1, 1))
        return standard_normal_log_prob(eps) + ld

    def decode(eps: Tensor) -> Tensor:
        return flow.inverse(eps.view(-1, 2, 1, 1))[0].view(-1, 2)

    lo, hi = sample_box(decode)
    mass = trapezoid_2d(log_density, lo, hi, 400)
    assert abs(mass - 1.0) < 1e-5, mass  # measured: 6e-7


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_logit_density_integrates_over_unit_interval(alpha: float) -> None:
    """``N(logit(α + (1−2α)y)) · |dx/dy|`` integrates over (0, 1) to the normal mass of the image.

    The logit maps (0, 1) onto ``(logit α, logit(1−α))``, so the mass is 1 for α = 0 and
    ``Φ(logit(1−α)) − Φ(logit α)`` otherwise.
    """
    n = 20_001
    y = torch.linspace(0.0, 1.0, n, dtype=torch.float64).view(1, -1)
    x, _ = LogitTransform(alpha)(y)
    p = alpha + (1 - 2 * alpha) * y
    ld = math.log(1 - 2 * alpha) - p.log() - (-p).log1p()  # elementwise log|dx/dy|
    dens = (-0.5 * x * x - 0.5 * LOG_2PI + ld).exp().view(-1)
    if alpha == 0:  # the end points map to ±∞, where the density's limit is 0
        dens[0] = dens[-1] = 0.0
    assert torch.isfinite(dens).all()
    mass = float(torch.trapezoid(dens, y.view(-1)))
    expected = math.erf(math.log((1 - alpha) / alpha) / math.sqrt(2)) if alpha else 1.0
    assert abs(mass - expected) < 1e-8, (mass, expected)  # measured: 1.6e-9
    # The layer's per-sample log-det is the sum of the elementwise one used above.
    _, ld_layer = LogitTransform(alpha)(y[:, 1:1001].view(1, 1, 1, -1))
    torch.testing.assert_close(ld_layer, ld[:, 1:1001].sum(1), rtol=1e-12, atol=1e-9)
