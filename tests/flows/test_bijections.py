"""The generic checks, run on every bijection of the registry (``tests/helpers/bijections.py``).

nflows' ``TransformTest``, deeper: shapes and finiteness, exact inversion, ``forward`` log-det =
−``inverse`` log-det, both log-dets against ``log|det J|`` of the float64 autograd Jacobian,
gradients with respect to parameters and inputs (autograd against finite differences too), and
the same maps for channels-last images. Property-based round trips are in ``test_properties.py``.
"""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import CASES, Case, assert_rel_close, jacobian_logdets
from torch import Tensor

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)


def both_ways(case: Case) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(x, y, log-det, inverse(y), inverse log-det)`` for the case's float32 layer and inputs."""
    layer = case.make(case.shape)
    x = case.sample(case.shape)
    with torch.no_grad():
        y, ld = layer(x)
        x2, ld_inv = layer.inverse(y)
    return x, y, ld, x2, ld_inv


def test_shapes_and_finite(case: Case) -> None:
    """Outputs have the expected shapes, a ``[B]`` log-det, and are finite both ways."""
    x, y, ld, x2, ld_inv = both_ways(case)
    assert y.numel() == x.numel() and y.shape[0] == x.shape[0]
    assert x2.shape == x.shape
    assert ld.shape == ld_inv.shape == (x.shape[0],)
    for t in (y, ld, x2, ld_inv):
        assert torch.isfinite(t).all()


def test_inverse_of_forward(case: Case) -> None:
    """``inverse(forward(x)) == x`` in float32, and the layer is not the identity."""
    x, y, _, x2, _ = both_ways(case)
    assert float((x2.float() - x).abs().max()) < case.inverse_atol
    assert y.shape != x.shape or not torch.allclose(y.float(), x, atol=1e-3), "layer is trivial"


def test_forward_logdet_is_minus_inverse_logdet(case: Case) -> None:
    """``log|det ∂y/∂x|(x) = −log|det ∂x/∂y|(y)`` at ``y = f(x)``."""
    _, _, ld, _, ld_inv = both_ways(case)
    assert_rel_close(ld, -ld_inv, case.inverse_logdet_rtol)


def test_forward_logdet_matches_jacobian(case: Case) -> None:
    """The forward log-det equals ``log|det J|`` of the autograd Jacobian (float64)."""
    layer = case.make(case.tiny, torch.float64)
    x = case.sample(case.tiny, torch.float64)
    _, ld = layer(x)
    ref = jacobian_logdets(lambda inp: layer(inp)[0], x)
    assert_rel_close(ld, ref, case.logdet_rtol)


def test_inverse_logdet_matches_jacobian(case: Case) -> None:
    """The inverse log-det equals ``log|det J|`` of the inverse's autograd Jacobian (float64)."""
    layer = case.make(case.tiny, torch.float64)
    with torch.no_grad():
        y = layer(case.sample(case.tiny, torch.float64))[0].double()
    _, ld_inv = layer.inverse(y)
    ref = jacobian_logdets(lambda inp: layer.inverse(inp)[0], y)
    assert_rel_close(ld_inv, ref, case.logdet_rtol)


def test_gradients_reach_parameters_and_inputs(case: Case) -> None:
    """Backpropagating through output and log-det gives finite gradients for the input and every
    parameter, not all zero (parameter-free layers: the input alone)."""
    layer = case.make(case.shape)
    x = case.sample(case.shape).requires_grad_()
    y, ld = layer(x)
    (y.float().square().mean() + ld.mean()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert float(x.grad.abs().max()) > 0, "no gradient reaches the input"
    grads = [p.grad for p in layer.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert not grads or any(float(g.abs().max()) > 0 for g in grads if g is not None)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_input_gradients_match_finite_differences(case: Case, direction: str) -> None:
    """``gradcheck`` (float64, tiny inputs): autograd's input gradients of the output and the
    log-det equal central finite differences, in both directions."""
    layer = case.make(case.tiny, torch.float64)
    x = case.sample(case.tiny, torch.float64)
    if direction == "inverse":
        with torch.no_grad():
            x = layer(x)[0].double()
    run = layer if direction == "forward" else layer.inverse
    assert torch.autograd.gradcheck(run, (x.requires_grad_(),), fast_mode=True)


IMAGE_CASES = [c for c in CASES if c.domain.is_image]


@pytest.mark.parametrize("image_case", IMAGE_CASES, ids=[c.name for c in IMAGE_CASES])
def test_channels_last_input_gives_the_same_maps(image_case: Case) -> None:
    """An NHWC input gives the NCHW results both ways (layers may pick other kernels for it)."""
    case = image_case
    layer = case.make(case.shape)
    x = case.sample(case.shape)
    with torch.no_grad():
        y, ld = layer(x)
        y_cl, ld_cl = layer(x.contiguous(memory_format=torch.channels_last))
        x_back = layer.inverse(y_cl.contiguous(memory_format=torch.channels_last))[0]
    torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ld_cl, ld, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(x_back, x, rtol=1e-5, atol=1e-5)
