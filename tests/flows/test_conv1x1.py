"""Invertible 1×1 convolutions and channel permutations (:mod:`glowapp.flows.conv1x1`): the eval
cache follows in-place updates, and the log-det stays float32 under autocast. The generic
bijection checks are in ``test_bijections.py``."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import assert_rel_close, perturb

from glowapp.flows import Bijection, ChannelPermutation, InvConv1x1, InvConv1x1LU

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("cls", [InvConv1x1, InvConv1x1LU])
def test_eval_cache_sees_in_place_updates(cls: type[Bijection]) -> None:
    """After an in-place parameter update (an optimiser step) eval mode uses the new W and W⁻¹."""
    layer = perturb(cls(6)).eval()
    x = torch.randn(4, 6, 5, 5)
    with torch.no_grad():
        y_old, _ = layer(x)
        layer.inverse(y_old)  # fill the caches
        for p in layer.parameters():
            p.add_(0.2 * torch.randn_like(p))
        y, ld = layer(x)
        x2, ld_inv = layer.inverse(y)
    assert float((y - y_old).abs().max()) > 1e-2, "forward still uses the old weight"
    assert float((x2 - x).abs().max()) < 1e-5
    fresh = torch.linalg.slogdet(layer.matrix())[1] * 25
    assert_rel_close(ld, fresh.expand(4), 1e-6)
    assert_rel_close(ld_inv, -fresh.expand(4), 1e-6)
    torch.testing.assert_close(y, torch.einsum("ij,bjhw->bihw", layer.matrix().float(), x))


@pytest.mark.parametrize("cls", [InvConv1x1, InvConv1x1LU])
def test_logdet_under_autocast(cls: type[Bijection]) -> None:
    """Under bf16 autocast the log-det is float32 and equals the float32 log-det."""
    layer = perturb(cls(8))
    x = torch.randn(2, 8, 4, 4)
    y32, ld32 = layer(x)
    _, ld_inv32 = layer.inverse(y32)
    for grad in (True, False):
        with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16):
            y, ld = layer(x)
            _, ld_inv = layer.inverse(y32)
        assert ld.dtype == ld_inv.dtype == torch.float32
        assert torch.equal(ld, ld32) and torch.equal(ld_inv, ld_inv32)
        # The mixing itself also stays in float32 (only conditioner nets run in bf16).
        assert y.dtype == torch.float32
        torch.testing.assert_close(y, y32, rtol=1e-6, atol=1e-6)
    _, ld16 = layer(x.bfloat16())
    assert ld16.dtype == torch.float32 and torch.equal(ld16, ld32)


def test_permutation_validation() -> None:
    with pytest.raises(ValueError, match="reverse"):
        ChannelPermutation(4, "rotate")
