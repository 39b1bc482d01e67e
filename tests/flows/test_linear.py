"""Pointwise linear maps: ``channel_linear`` (:mod:`glowapp.flows.base`) and ``PointwiseConv2d``
(:mod:`glowapp.flows.nets`) are 1×1 convolutions, on NCHW and channels-last inputs."""

from __future__ import annotations

import torch
from torch import nn

from glowapp.flows.base import channel_linear
from glowapp.flows.nets import PointwiseConv2d


def test_channel_linear_is_a_1x1_convolution() -> None:
    """``channel_linear`` is ``y[b, :, i, j] = W x[b, :, i, j] + bias`` (values and gradients,
    against that sum written out with ``einsum``), and keeps a channels-last input
    channels-last, for NCHW and channels-last inputs alike."""
    weight = torch.randn(5, 3, requires_grad=True)
    bias = torch.randn(5, requires_grad=True)
    x = torch.randn(2, 3, 4, 4)
    x_ref = x.clone().requires_grad_()
    y_ref = torch.einsum("oc,bchw->bohw", weight, x_ref) + bias[None, :, None, None]
    g = torch.randn_like(y_ref)
    refs = torch.autograd.grad(y_ref, (x_ref, weight, bias), g)
    for layout in (torch.contiguous_format, torch.channels_last):
        xl = x.contiguous(memory_format=layout).requires_grad_()
        y = channel_linear(xl, weight, bias)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        assert y.is_contiguous(memory_format=layout)
        grads = torch.autograd.grad(y, (xl, weight, bias), g)
        for got, want in zip(grads, refs, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # Without a bias, too.
    torch.testing.assert_close(
        channel_linear(x, weight), torch.einsum("oc,bchw->bohw", weight, x), rtol=1e-5, atol=1e-5
    )


def test_pointwise_conv_has_conv2d_parameters() -> None:
    """``PointwiseConv2d`` loads ``nn.Conv2d(c_in, c_out, 1)`` state dicts and computes the same."""
    conv = nn.Conv2d(3, 5, 1)
    pointwise = PointwiseConv2d(3, 5)
    pointwise.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(pointwise(x), conv(x))
        x_cl = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(pointwise(x_cl), conv(x), rtol=1e-6, atol=1e-6)
