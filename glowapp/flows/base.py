"""The bijection contract shared by every layer.

A :class:`Bijection` maps ``x -> y`` and back. Both directions return the
log-absolute-determinant of the Jacobian *of the direction that was run*, one
value per batch element:

* ``forward(x) -> (y, log|det dy/dx|)``
* ``inverse(y) -> (x, log|det dx/dy|)`` = ``-log|det dy/dx|`` at ``x``

Shapes are ``[B, C, H, W]`` in and out (unless a layer says otherwise) and the
log-determinant has shape ``[B]``, in nats.

A *conditional* layer (``conditional = True``) also takes a
:class:`~glowapp.flows.conditioning.Condition` (class labels, embedded) as its second argument
in both directions, ``forward(x, cond=None)`` and ``inverse(y, cond=None)``: it is then a
bijection of ``x`` for every fixed condition. :func:`forward_with` and :func:`inverse_with`
call any layer, handing the condition on only to those that take one.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glowapp.flows.conditioning import Condition


class Bijection(nn.Module):
    """Base class: an invertible map with a tractable log-determinant.

    ``conditional`` says whether the layer takes a condition (see the module docstring): a
    class attribute, or an instance one where conditioning is a constructor option.
    """

    conditional: bool = False

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class ElementwiseTransform(nn.Module):
    """An elementwise bijection ``y = g(x; θ)`` with ``params_per_dim`` parameters per element.

    ``forward(x, params) -> (y, log|g'(x)|)`` and ``inverse(y, params) -> (x, log|(g⁻¹)'(y)|)``,
    elementwise; ``params`` has shape ``[B, C, P, H, W]`` for ``x`` of shape ``[B, C, H, W]``.
    A zero ``params`` tensor must give the identity.
    """

    params_per_dim: int

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError


def at_least_float32(t: Tensor) -> Tensor:
    """``t`` in float32, or unchanged if it is already float32/float64.

    Log-dets, priors and the data path of couplings are kept at this precision even when
    autocast runs the conditioner networks in bf16/fp16.
    """
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def channel_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y[:, :, i, j] = weight @ x[:, :, i, j] + bias``: a 1×1 convolution, ``weight`` ``[C_out, C_in]``.

    A channels-last ``x`` is a ``[B·H·W, C_in]`` matrix in memory, so the map is one matrix
    product (and its backward two), returned channels-last; oneDNN's 1×1-convolution backward
    is up to 4× slower than those products at 8×8 and 4×4 (see the benchmark). Other layouts
    go through ``conv2d``.
    """
    if x.is_contiguous(memory_format=torch.channels_last):
        return F.linear(x.permute(0, 2, 3, 1), weight, bias).permute(0, 3, 1, 2)
    return F.conv2d(x, weight[:, :, None, None], bias)


_weight_writes = 0


def weight_writes() -> int:
    """How many times weights may have been written behind autograd's back (see
    :func:`note_weight_writes`): part of the key of every inference-time cache."""
    return _weight_writes


def note_weight_writes() -> None:
    """Invalidate every inference-time cache of every model in this process.

    Writes through ``.data`` (weight averaging swaps) keep the parameters' version counters, so
    caches keyed by them cannot see such writes; whoever makes them calls this (the 1×1
    convolutions' ``clear_cache`` does, which is what ``GlowModule.clear_caches`` runs).
    """
    global _weight_writes
    _weight_writes += 1


def zero_logdet(x: Tensor) -> Tensor:
    """A ``[B]`` tensor of zeros in float32 (log-dets are always accumulated in float32)."""
    return x.new_zeros(x.shape[0], dtype=torch.float32)


def forward_with(layer: Bijection, x: Tensor, cond: Condition | None) -> tuple[Tensor, Tensor]:
    """``layer(x, cond)`` for a conditional layer, ``layer(x)`` for any other."""
    return layer(x, cond) if layer.conditional else layer(x)


def inverse_with(layer: Bijection, y: Tensor, cond: Condition | None) -> tuple[Tensor, Tensor]:
    """``layer.inverse(y, cond)`` for a conditional layer, ``layer.inverse(y)`` for any other."""
    return layer.inverse(y, cond) if layer.conditional else layer.inverse(y)


class FlowSequential(Bijection):
    """Composition ``f_n ∘ ... ∘ f_1``; log-dets add up (and are negated in reverse order on inverse).

    Conditional: ``cond`` goes to every conditional layer (the others never see it), so one
    sequence can mix both kinds.
    """

    conditional = True

    def __init__(self, layers: Iterable[Bijection]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        logdet = zero_logdet(x)
        for layer in self.layers:
            x, ld = forward_with(layer, x, cond)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        logdet = zero_logdet(y)
        for layer in reversed(self.layers):
            y, ld = inverse_with(layer, y, cond)
            logdet = logdet + ld
        return y, logdet

    def __len__(self) -> int:
        return len(self.layers)


class Inverse(Bijection):
    """Swaps the two directions of a bijection: ``forward = f⁻¹``, ``inverse = f``."""

    def __init__(self, bijection: Bijection) -> None:
        super().__init__()
        self.bijection = bijection

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.bijection.inverse(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.bijection(y)
