"""Channels-last models: the same numbers as NCHW, and no NCHW tensor reaches a heavy kernel."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers.bijections import assert_rel_close
from helpers.layouts import NCHWKernelInputs
from helpers.model_cases import Prepared
from helpers.models import images, prepare

from glowapp.models import Glow

pytestmark = pytest.mark.usefixtures("single_thread")


def test_channels_last_changes_nothing_but_the_layout(prepared_model: Prepared) -> None:
    """The same weights in NHWC: the same log p, gradients and inverse (to rounding)."""
    case, model, x, y = prepared_model
    nchw, nhwc = copy.deepcopy(model), copy.deepcopy(model).use_channels_last()
    assert nchw.memory_format == torch.contiguous_format
    assert all(
        p.is_contiguous(memory_format=torch.channels_last) for p in nhwc.parameters() if p.ndim == 4
    )
    results = []
    for flow in (nchw, nhwc):
        flow.zero_grad(set_to_none=True)
        flow.log_prob(x, y).sum().backward()
        with torch.no_grad():
            latents, _ = flow.encode(x, y)
            results.append((flow.log_prob(x, y), [p.grad for p in flow.parameters()], latents))
            assert float((flow.decode(latents, y) - x).abs().max()) < case.inverse_atol
    (lp_a, grads_a, lat_a), (lp_b, grads_b, lat_b) = results
    assert_rel_close(lp_b, lp_a, 1e-5)
    for eps_a, eps_b in zip(lat_a, lat_b, strict=True):
        torch.testing.assert_close(eps_b, eps_a, rtol=1e-4, atol=1e-4)
    scale = max(float(g.abs().max()) for g in grads_a if g is not None)
    for g_a, g_b in zip(grads_a, grads_b, strict=True):
        if g_a is not None:
            assert float((g_a - g_b).abs().max()) <= 1e-4 * scale


def test_channels_last_glow_stays_channels_last() -> None:
    """Training (forward and backward) and sampling a channels-last Glow never hand an NCHW
    activation or gradient to a convolution, matrix product or ReLU backward."""
    torch.manual_seed(0)
    model = prepare(Glow(3, levels=3, steps=2, hidden=16), images(8, 3, 16, 16)).use_channels_last()
    x = images(4, 3, 16, 16)
    with NCHWKernelInputs() as mode:
        model.log_prob(x).sum().backward()
        with torch.no_grad():
            model.decode(model.sample_latents(2, 0.7))
    assert not mode.seen, f"NCHW tensors reached kernels: {sorted(set(mode.seen))}"
