"""Memory-saving backpropagation through invertible layers (Gomez et al. 2017; Jacobsen et al. 2018).

A flow's inputs can be recomputed exactly from its outputs, so the backward pass does not need
stored activations: :func:`invertible_forward` runs a :class:`FlowSequential` without recording
a graph and keeps only its *output*; the backward pass walks the layers in reverse, reconstructs
each layer's input with ``layer.inverse``, re-runs that one layer with gradients on, and
back-propagates through it. Peak activation memory is one layer's, whatever the depth; the cost
is one extra inverse and one extra forward per layer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from glowapp.flows.base import FlowSequential
from glowapp.flows.batchnorm import BatchNormFlow


class _InvertibleSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, flow: FlowSequential, *params: Tensor
    ) -> tuple[Tensor, Tensor]:
        ctx.flow = flow
        ctx.autocast = (
            x.device.type,
            torch.is_autocast_enabled(x.device.type),
            torch.get_autocast_dtype(x.device.type),
        )
        with torch.no_grad():
            y, logdet = flow(x)
        ctx.save_for_backward(y)
        return y, logdet

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor, grad_logdet: Tensor) -> tuple[Tensor | None, ...]:
        (y,) = ctx.saved_tensors
        flow: FlowSequential = ctx.flow
        device_type, autocast_on, autocast_dtype = ctx.autocast
        param_grads: dict[int, Tensor] = {}
        for layer in reversed(flow.layers):
            with torch.no_grad():
                x, _ = layer.inverse(y)
            x = x.detach().requires_grad_(True)
            params = [p for p in layer.parameters() if p.requires_grad]
            with (
                torch.enable_grad(),
                torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_on),
            ):
                y_again, logdet = layer(x)
            # Volume-preserving layers return a constant log-det: leave it out of the graph.
            pairs = [
                (t, g) for t, g in ((y_again, grad_y), (logdet, grad_logdet)) if t.requires_grad
            ]
            grads = torch.autograd.grad(
                [t for t, _ in pairs], (x, *params), [g for _, g in pairs], allow_unused=True
            )
            grad_y = grads[0]
            for p, g in zip(params, grads[1:], strict=True):
                if g is not None:
                    param_grads[id(p)] = param_grads[id(p)] + g if id(p) in param_grads else g
            y = x.detach()
        all_params = [p for p in flow.parameters() if p.requires_grad]
        return (grad_y, None, *(param_grads.get(id(p)) for p in all_params))


def invertible_forward(flow: FlowSequential, x: Tensor) -> tuple[Tensor, Tensor]:
    """``flow(x)`` with memory-saving backprop: gradients equal the standard backward's.

    Batch-norm layers use batch statistics in training, which an inverse cannot reproduce, so
    flows containing :class:`BatchNormFlow` are rejected.
    """
    if any(isinstance(m, BatchNormFlow) for m in flow.modules()):
        raise ValueError("memory-saving backprop cannot be used with batch-norm flow layers")
    params = [p for p in flow.parameters() if p.requires_grad]
    return _InvertibleSequence.apply(x, flow, *params)
