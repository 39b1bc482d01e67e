"""Memory-saving backpropagation through invertible layers (Gomez et al. 2017; Jacobsen et al. 2018).

A flow's inputs can be recomputed exactly from its outputs, so the backward pass does not need
stored activations: :func:`invertible_forward` runs a :class:`FlowSequential` without recording
a graph and keeps only its *output*; the backward pass walks the layers in reverse, reconstructs
each layer's input with ``layer.inverse``, re-runs that one layer with gradients on, and
back-propagates through it. Peak activation memory is one layer's, whatever the depth; the cost
is one extra inverse and one extra forward per layer.

A conditional flow gets its :class:`~glowapp.flows.conditioning.Condition` in both passes (each
layer is a bijection of its input for a fixed condition), and the condition's embeddings get
their gradients like parameters shared by every layer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from glowapp.flows.base import FlowSequential, forward_with, inverse_with
from glowapp.flows.batchnorm import BatchNormFlow
from glowapp.flows.conditioning import Condition


class _InvertibleSequence(torch.autograd.Function):
    """``flow(x, Condition(embedding, null, weight))`` (no condition when ``embedding`` is None),
    keeping only the output; gradients reach ``x``, the embeddings and the flow's parameters."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        embedding: Tensor | None,
        null: Tensor | None,
        weight: float,
        flow: FlowSequential,
        *params: Tensor,
    ) -> tuple[Tensor, Tensor]:
        ctx.flow = flow
        ctx.weight = weight
        ctx.autocast = (
            x.device.type,
            torch.is_autocast_enabled(x.device.type),
            torch.get_autocast_dtype(x.device.type),
        )
        with torch.no_grad():
            y, logdet = flow(x, _condition(embedding, null, weight))
        ctx.save_for_backward(y, embedding, null)
        return y, logdet

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor, grad_logdet: Tensor) -> tuple[Tensor | None, ...]:
        y, embedding, null = ctx.saved_tensors
        flow: FlowSequential = ctx.flow
        device_type, autocast_on, autocast_dtype = ctx.autocast
        # The condition's tensors as leaves of each layer's re-run graph; their gradients add
        # up over the layers, like those of a parameter that every layer uses.
        cond_leaves = [
            None if t is None else t.detach().requires_grad_(True) for t in (embedding, null)
        ]
        cond = _condition(*cond_leaves, ctx.weight)
        inputs = [t for t in cond_leaves if t is not None]
        param_grads: dict[int, Tensor] = {}
        for layer in reversed(flow.layers):
            with torch.no_grad():
                x, _ = inverse_with(layer, y, cond)
            x = x.detach().requires_grad_(True)
            params = [p for p in layer.parameters() if p.requires_grad]
            with (
                torch.enable_grad(),
                torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_on),
            ):
                y_again, logdet = forward_with(layer, x, cond)
            # Volume-preserving layers return a constant log-det: leave it out of the graph.
            pairs = [
                (t, g) for t, g in ((y_again, grad_y), (logdet, grad_logdet)) if t.requires_grad
            ]
            grads = torch.autograd.grad(
                [t for t, _ in pairs],
                (x, *inputs, *params),
                [g for _, g in pairs],
                allow_unused=True,
            )
            grad_y = grads[0]
            for p, g in zip((*inputs, *params), grads[1:], strict=True):
                if g is not None:
                    param_grads[id(p)] = param_grads[id(p)] + g if id(p) in param_grads else g
            y = x.detach()
        grad_cond = [None if t is None else param_grads.get(id(t)) for t in cond_leaves]
        all_params = [p for p in flow.parameters() if p.requires_grad]
        return (grad_y, *grad_cond, None, None, *(param_grads.get(id(p)) for p in all_params))


def _condition(embedding: Tensor | None, null: Tensor | None, weight: float) -> Condition | None:
    return None if embedding is None else Condition(embedding, null, weight)


def invertible_forward(
    flow: FlowSequential, x: Tensor, cond: Condition | None = None
) -> tuple[Tensor, Tensor]:
    """``flow(x, cond)`` with memory-saving backprop: gradients equal the standard backward's,
    the condition's embeddings (and through them the label embedding table) included.

    Batch-norm layers use batch statistics in training, which an inverse cannot reproduce, so
    flows containing :class:`BatchNormFlow` are rejected.
    """
    if any(isinstance(m, BatchNormFlow) for m in flow.modules()):
        raise ValueError("memory-saving backprop cannot be used with batch-norm flow layers")
    params = [p for p in flow.parameters() if p.requires_grad]
    if cond is None:
        return _InvertibleSequence.apply(x, None, None, 0.0, flow, *params)
    return _InvertibleSequence.apply(x, cond.embedding, cond.null, cond.weight, flow, *params)
