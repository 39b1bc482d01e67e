"""MADE and the masked autoregressive flows (:mod:`glowapp.flows.made`,
:mod:`glowapp.flows.autoregressive`) on their own.

The registry runs the generic checks; here: MADE's outputs depend only on earlier inputs (random
and given orders), the costs the papers name — MAF's density in one conditioner pass and its
sampling in ``dim``, IAF the other way round —, the spline transformer's identity tails, and
argument errors.
"""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import perturb
from torch import nn

from glowapp.flows import InverseAutoregressiveFlow, MaskedAutoregressiveFlow
from glowapp.flows.made import MADE
from glowapp.flows.spline import RationalQuadraticSpline

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("order", [None, [3, 0, 4, 1, 2]])
def test_made_outputs_depend_only_on_earlier_inputs(order: list[int] | None) -> None:
    """``∂out_i/∂x_j ≠ 0`` exactly when ``x_j`` comes before ``x_i`` in the order (all of them:
    no connection is lost), and the given order is the one used."""
    made = perturb(MADE(5, 16, params_per_dim=3, order=order)).double()
    if order is not None:
        assert made.degrees[torch.tensor(order)].tolist() == [1, 2, 3, 4, 5]
    x = torch.randn(1, 5, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(made, x)[0, :, :, 0, :]  # (i, p, j)
    depends = jac.abs().amax(dim=1) > 0  # (i, j)
    earlier = made.degrees[None, :] < made.degrees[:, None]  # x_j before x_i
    assert torch.equal(depends, earlier)


def count_calls(module: nn.Module) -> list[int]:
    """A one-element counter incremented by every call of ``module``."""
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("flow", [MaskedAutoregressiveFlow, InverseAutoregressiveFlow])
@pytest.mark.parametrize("transformer", ["affine", "spline"])
def test_one_pass_forward_and_dim_pass_inverse(flow: type, transformer: str) -> None:
    """``forward`` calls MADE once, ``inverse`` ``dim`` times — MAF: density once, sampling
    ``dim``; IAF: sampling once, density ``dim`` — and the round trip is exact."""
    dim = 6
    layer = perturb(flow(dim, 16, transformer), 0.1).double()
    calls = count_calls(layer.made)
    x = torch.randn(4, dim, dtype=torch.float64)
    with torch.no_grad():
        y, _ = layer(x)
        assert calls[0] == 1
        x2, _ = layer.inverse(y)
    assert calls[0] == 1 + dim
    torch.testing.assert_close(x2, x, rtol=0, atol=1e-12)


def test_spline_transformer_is_the_identity_outside_its_bound() -> None:
    """The spline transformer is the coupling's :class:`RationalQuadraticSpline`: variables
    beyond ``±spline_bound`` pass unchanged and add nothing to the log-det."""
    layer = perturb(MaskedAutoregressiveFlow(3, 16, "spline", spline_bound=2.0), 0.3).double()
    assert isinstance(layer.transform, RationalQuadraticSpline)
    x = torch.tensor([[5.0, -7.0, 2.5]], dtype=torch.float64)
    with torch.no_grad():
        y, ld = layer(x)
    assert torch.equal(y, x) and float(ld) == 0.0
    inside = torch.tensor([[0.5, -1.0, 1.5]], dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(layer(inside)[0], inside)


def test_starts_as_the_identity() -> None:
    """MADE's zero output layer makes a fresh flow the identity (to rounding, for the spline)."""
    x = torch.randn(4, 3, dtype=torch.float64)
    for transformer in ("affine", "spline"):
        with torch.no_grad():
            y, ld = MaskedAutoregressiveFlow(3, 8, transformer).double()(x)
        torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
        torch.testing.assert_close(ld, torch.zeros_like(ld), rtol=0, atol=1e-12)


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="transformer must be one of"):
        MaskedAutoregressiveFlow(3, 8, "quadratic")
    with pytest.raises(ValueError, match="permutation of range"):
        MaskedAutoregressiveFlow(3, 8, order=[0, 0, 1])
    with pytest.raises(ValueError, match=">= 1"):
        MaskedAutoregressiveFlow(0, 8)
