"""The bijection contract shared by every layer.

A :class:`Bijection` maps ``x -> y`` and back. Both directions return the
log-absolute-determinant of the Jacobian *of the direction that was run*, one
value per batch element:

* ``forward(x) -> (y, log|det dy/dx|)``
* ``inverse(y) -> (x, log|det dx/dy|)`` = ``-log|det dy/dx|`` at ``x``

Shapes are ``[B, C, H, W]`` in and out (unless a layer says otherwise) and the
log-determinant has shape ``[B]``, in nats.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Bijection(nn.Module):
    """Base class: an invertible map with a tractable log-determinant."""

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


def zero_logdet(x: Tensor) -> Tensor:
    """A ``[B]`` tensor of zeros in float32 (log-dets are always accumulated in float32)."""
    return x.new_zeros(x.shape[0], dtype=torch.float32)


class FlowSequential(Bijection):
    """Composition ``f_n ∘ ... ∘ f_1``; log-dets add up (and are negated in reverse order on inverse)."""

    def __init__(self, layers: Iterable[Bijection]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = zero_logdet(x)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        logdet = zero_logdet(y)
        for layer in reversed(self.layers):
            y, ld = layer.inverse(y)
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
