"""Coupling on flat vectors ``[B, D]`` with an MLP conditioner (RealNVP, Dinh et al. 2017, §3.3).

The image couplings (:mod:`glowapp.flows.coupling`) condition with convolutions on
``[B, C, H, W]``; this one is the same map for points (the 2-D playground, tabular data), with
the same elementwise transforms (affine, additive, rational-quadratic spline).
"""

from __future__ import annotations

from torch import nn

from glowapp.flows.base import ElementwiseTransform
from glowapp.flows.coupling import ChannelCoupling


def zero_mlp(in_features: int, out_features: int, hidden: int, layers: int = 2) -> nn.Sequential:
    """``layers`` hidden ``Linear + ReLU`` blocks of width ``hidden``, then a zero-initialised
    ``Linear``: ``[B, in_features] -> [B, out_features]``, exactly zero at initialisation."""
    if hidden <= 0 or layers < 1:
        raise ValueError(f"an MLP needs hidden > 0 and layers ≥ 1, got {hidden=} and {layers=}")
    widths = [in_features] + [hidden] * layers
    blocks: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
        blocks += [nn.Linear(w_in, w_out), nn.ReLU()]
    last = nn.Linear(hidden, out_features)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*blocks, last)


class VectorCoupling(ChannelCoupling):
    """Coupling on ``[B, D]``: ``x = [x_a, x_b]`` split at ``D // 2`` (``swap`` exchanges roles).

    forward:  ``y_a = x_a``, ``y_b = g(x_b; MLP(x_a))``
    inverse:  ``x_a = y_a``, ``x_b = g⁻¹(y_b; MLP(y_a))``
    log-det:  ``Σ_b log|g'(x_b)|``, shape ``[B]``

    :class:`~glowapp.flows.coupling.ChannelCoupling` with the features as channels and
    :func:`zero_mlp` (``layers`` hidden layers of width ``hidden``) as the conditioner; the
    transform ``g`` gets parameters ``[B, D_b, P]``. The MLP's last layer starts at zero, so the
    coupling starts as the identity. Both directions cost one MLP pass.
    """

    make_net = staticmethod(zero_mlp)

    def __init__(
        self,
        dim: int,
        hidden: int,
        transform: str | ElementwiseTransform = "affine",
        swap: bool = False,
        layers: int = 2,
    ) -> None:
        super().__init__(dim, hidden, transform, swap, blocks=layers)
