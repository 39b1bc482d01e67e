"""The playground's flows: both directions give the same density, the autoregressive pass
counts (MAF: density in one pass, sampling in ``dim``; IAF: the reverse), and every fitted
flow's density integrates to one on a grid that covers its mass."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from glowapp.flows import FlowSequential, PlanarFlow, VectorCoupling
from glowapp.flows.made import MADE
from glowapp.playground import (
    DENSITY_FLOWS,
    Grid,
    VectorFlow,
    density_flow,
    energy,
    energy_flow,
    fit_maximum_likelihood,
    fit_reverse_kl,
    integrate,
    log_density_on_grid,
    sample_dataset,
)
from glowapp.playground.models import use_exact_logdet

# Covers the mass of the data sets (inside [−4, 4]²) and of short fits to them; h = 0.1.
GRID = Grid(-6.0, 6.0, 120)


def perturbed(flow: VectorFlow, scale: float = 0.1) -> VectorFlow:
    """``flow`` with ``N(0, scale²)`` added to every parameter (zero-initialised nets are the identity)."""
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn_like(p))
    return flow


def all_flows() -> dict[str, VectorFlow]:
    flows = {name: density_flow(name) for name in DENSITY_FLOWS}
    flows |= {f"{kind} K=4": energy_flow(kind, 4) for kind in ("planar", "radial")}
    return flows


@pytest.mark.parametrize("name", [*DENSITY_FLOWS, "planar K=4", "radial K=4"])
def test_samples_log_density_matches_the_density_direction(name: str) -> None:
    """``sample_with_log_prob`` (the sampling direction) and ``log_prob`` (the density
    direction) agree at the samples: the flow's orientation and signs are right."""
    flow = use_exact_logdet(perturbed(all_flows()[name]))
    x, log_q = flow.sample_with_log_prob(256, torch.Generator().manual_seed(0))
    assert x.shape == (256, 2)
    assert not torch.allclose(log_q, flow.log_prob(torch.randn(256, 2)))  # not trivial
    torch.testing.assert_close(flow.log_prob(x), log_q, rtol=1e-4, atol=1e-4)


def test_float64_flows_sample_and_score_in_float64() -> None:
    flow = perturbed(density_flow("RealNVP")).double()
    x, log_q = flow.sample_with_log_prob(64)
    assert x.dtype == log_q.dtype == torch.float64
    torch.testing.assert_close(flow.log_prob(x), log_q, rtol=1e-10, atol=1e-10)


def test_a_flow_without_parameters_is_the_standard_normal() -> None:
    flow = VectorFlow(FlowSequential([]), dim=2)
    x, log_q = flow.sample_with_log_prob(10)
    torch.testing.assert_close(
        log_q, -0.5 * (x * x).sum(dim=1) - torch.log(torch.tensor(2 * torch.pi))
    )


def count_made_passes(flow: nn.Module) -> list[int]:
    """A one-element list counting the calls of every MADE inside ``flow`` from now on."""
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    for module in flow.modules():
        if isinstance(module, MADE):
            module.register_forward_hook(hook)
    return calls


@pytest.mark.parametrize(
    ("name", "density_passes", "sampling_passes"),
    [("MAF (affine)", 1, "dim"), ("MAF (spline)", 1, "dim"), ("IAF", "dim", 1)],
)
def test_autoregressive_pass_counts(
    name: str, density_passes: object, sampling_passes: object
) -> None:
    """Per layer: MAF evaluates in one MADE pass and samples in ``dim``; IAF the reverse."""
    dim = 6
    flow = density_flow(name, dim)
    layers = sum(isinstance(m, MADE) for m in flow.modules())
    expected = {1: layers, "dim": layers * dim}
    calls = count_made_passes(flow)
    flow.log_prob(torch.randn(8, dim))
    assert calls[0] == expected[density_passes]
    calls[0] = 0
    flow.sample(8)
    assert calls[0] == expected[sampling_passes]


@pytest.mark.parametrize("name", list(DENSITY_FLOWS))
def test_fitted_density_flows_integrate_to_one(name: str) -> None:
    flow = density_flow(name)
    fit_maximum_likelihood(flow, sample_dataset("moons", 2000, seed=0), steps=40, lr=5e-3)
    use_exact_logdet(flow)
    integral = integrate(log_density_on_grid(flow.log_prob, GRID), GRID)
    assert abs(integral - 1) < 0.02


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_fitted_energy_flows_integrate_to_one(kind: str) -> None:
    flow = energy_flow(kind, 8)
    fit_reverse_kl(flow, energy("U1"), steps=40)
    integral = integrate(log_density_on_grid(flow.log_prob, GRID), GRID)
    assert abs(integral - 1) < 0.02


def test_use_exact_logdet_reaches_every_residual_block() -> None:
    flow = density_flow("i-ResNet")
    blocks = [m for m in flow.modules() if hasattr(m, "logdet")]
    assert blocks and {b.logdet for b in blocks} == {"series"}
    use_exact_logdet(flow)
    assert {b.logdet for b in blocks} == {"exact"}


def test_vector_coupling_starts_as_the_identity() -> None:
    coupling = VectorCoupling(3, 8, "spline", swap=True)
    x = torch.randn(5, 3)
    y, logdet = coupling(x)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(logdet, torch.zeros(5))


def test_unknown_flow_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="MAF"):
        density_flow("NICE")
    with pytest.raises(ValueError, match="planar"):
        energy_flow("sylvester", 4)


def test_planar_inverse_converges_where_newton_bounces() -> None:
    """A fitted planar layer (c = wᵀû ≈ 6.8) at t = wᵀy + b = 5.34: plain Newton bounces between
    the ends of its bracket there; the inverse must still converge and invert the forward."""
    layer = PlanarFlow(2).double()
    with torch.no_grad():
        layer.w.copy_(torch.tensor([-9.4355, 0.7177]))
        layer.b.fill_(0.138)
        wu = math.log(math.expm1(7.8257))  # softplus(wᵀu) − 1 = 6.8257
        layer.u.copy_(layer.w * wu / (layer.w @ layer.w))
    t = torch.tensor([-5.34, 5.34, 0.0, 40.0], dtype=torch.float64)
    y = ((t - 0.138) / (layer.w @ layer.w)).unsqueeze(1) * layer.w.detach()  # wᵀy + b = t
    x, _ = layer.inverse(y)
    torch.testing.assert_close(layer(x)[0], y)
