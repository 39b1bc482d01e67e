"""Coupling layers (Dinh et al. 2014, 2017; Kingma & Dhariwal 2018).

A coupling splits the input by a mask into a conditioning part ``x_a`` and a transformed part
``x_b``; ``x_b`` goes through an elementwise bijection whose parameters a conditioner network
computes from ``x_a``, and ``x_a`` passes unchanged. The Jacobian is triangular, so the log-det
is the sum of the elementwise log-derivatives over ``x_b``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from glowapp.flows.base import Bijection, ElementwiseTransform, at_least_float32
from glowapp.flows.conditioning import Condition, check_condition
from glowapp.flows.nets import ConvNet, ResNet
from glowapp.flows.spline import RationalQuadraticSpline


class AffineTransform(ElementwiseTransform):
    """``y = x · exp(log_s) + t`` with ``log_s = B · tanh(s_raw / B)``.

    The scale is bounded softly to ``|log_s| < B`` (default ``B = 2``): near zero the tanh is the
    identity (so learning is unaffected and zero params give the identity), while the bound keeps
    ``exp(±log_s)`` finite, so the inverse cannot explode when sampling at high temperature — the
    failure users of unbounded ``exp`` scales report. (The reference Glow code uses
    ``sigmoid(h + 2)`` instead, which is not the identity at zero-initialisation.)
    """

    params_per_dim = 2

    def __init__(self, scale_bound: float = 2.0) -> None:
        super().__init__()
        self.scale_bound = scale_bound

    def _shift_log_scale(self, params: Tensor) -> tuple[Tensor, Tensor]:
        params = at_least_float32(params)
        shift, raw = params[:, :, 0], params[:, :, 1]
        return shift, self.scale_bound * torch.tanh(raw / self.scale_bound)

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_s = self._shift_log_scale(params)
        return x * log_s.exp() + shift, log_s

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_s = self._shift_log_scale(params)
        return (y - shift) * (-log_s).exp(), -log_s


class AdditiveTransform(ElementwiseTransform):
    """``y = x + t`` (NICE): volume preserving, log-det 0."""

    params_per_dim = 1

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        shift = at_least_float32(params[:, :, 0])
        return x + shift, torch.zeros_like(shift)

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        shift = at_least_float32(params[:, :, 0])
        return y - shift, torch.zeros_like(shift)


COUPLINGS = ("affine", "additive", "spline")


def make_transform(
    kind: str, spline_bins: int = 8, spline_bound: float = 3.0
) -> ElementwiseTransform:
    """The elementwise transform named ``kind``: ``"affine"``, ``"additive"`` or ``"spline"``.

    ``spline_bins`` and ``spline_bound`` are the :class:`RationalQuadraticSpline`'s ``K`` and
    ``B`` (unused by the other kinds).
    """
    if kind == "affine":
        return AffineTransform()
    if kind == "additive":
        return AdditiveTransform()
    if kind == "spline":
        return RationalQuadraticSpline(spline_bins, spline_bound)
    raise ValueError(f"coupling must be one of {COUPLINGS}, got {kind!r}")


def as_transform(transform: str | ElementwiseTransform) -> ElementwiseTransform:
    """``transform`` itself, or :func:`make_transform` of its name with the default options."""
    return make_transform(transform) if isinstance(transform, str) else transform


def make_conditioner(
    in_channels: int,
    out_channels: int,
    hidden: int,
    blocks: int,
    cond_dim: int = 0,
    attention_heads: int = 0,
) -> nn.Module:
    """Glow's 3-layer :class:`ConvNet` when ``blocks == 0``, else a RealNVP :class:`ResNet`.

    ``cond_dim > 0`` makes the network take label embeddings of that size; ``attention_heads >
    0`` adds self-attention (the :class:`ConvNet` only).
    """
    if hidden <= 0:
        raise ValueError(f"hidden width must be positive, got {hidden}")
    if cond_dim < 0 or attention_heads < 0:
        raise ValueError(
            f"cond_dim and attention_heads must be >= 0, got {cond_dim=}, {attention_heads=}"
        )
    if blocks > 0:
        if attention_heads:
            raise ValueError(
                "self-attention is only available in Glow's ConvNet conditioner (blocks=0), "
                f"got blocks={blocks} with attention_heads={attention_heads}"
            )
        return ResNet(in_channels, out_channels, hidden, blocks, cond_dim)
    return ConvNet(in_channels, out_channels, hidden, cond_dim, attention_heads)


class ChannelCoupling(Bijection):
    """Channel-mask coupling: ``x = [x_a, x_b]`` split along channels (Glow; RealNVP after squeeze).

    forward:  ``y_a = x_a``, ``y_b = g(x_b; NN(x_a))``
    inverse:  ``x_a = y_a``, ``x_b = g⁻¹(y_b; NN(y_a))``
    log-det:  ``Σ log|g'(x_b)|`` over the channels and pixels of ``x_b``

    ``swap=True`` exchanges the roles of the two halves (for alternating stacks). With an odd
    channel count the first half is the smaller one. ``transform`` is ``g``: a name for
    :func:`make_transform` or an :class:`ElementwiseTransform`. ``NN`` comes from
    :attr:`make_net` (``(in, out, hidden, blocks) -> nn.Module``), which a subclass can replace
    (:class:`~glowapp.flows.vector_coupling.VectorCoupling`: an MLP on ``[B, D]``).
    ``attention_heads > 0`` adds self-attention to the network (see :func:`make_conditioner`).

    Class-conditional (``cond_dim = E > 0``, then ``conditional``): both directions take a
    :class:`~glowapp.flows.conditioning.Condition` and the network sees the label embedding
    ``e``, ``θ = NN(x_a, e)`` (a zero-initialised per-channel bias of its first hidden layer, so
    a fresh layer ignores the label). ``θ`` comes from ``cond.params``: a guided condition gives
    ``θ_w = (1 + w)·θ(c) − w·θ(∅)`` in whichever direction it is passed. Sampling (``inverse``)
    is where guidance belongs; densities and encodings must use an unguided condition, for which
    the log-det above is that of ``p(x | y)``'s flow.
    """

    make_net = staticmethod(make_conditioner)

    def __init__(
        self,
        num_channels: int,
        hidden: int,
        transform: str | ElementwiseTransform = "affine",
        swap: bool = False,
        blocks: int = 0,
        cond_dim: int = 0,
        attention_heads: int = 0,
    ) -> None:
        super().__init__()
        if num_channels < 2:
            raise ValueError(f"a channel coupling needs at least 2 channels, got {num_channels}")
        self.swap = swap
        self.sizes = [num_channels // 2, num_channels - num_channels // 2]
        self.transform = as_transform(transform)
        self.cond_dim = cond_dim
        self.conditional = cond_dim > 0
        cond, changed = self.sizes[::-1] if swap else self.sizes
        # Only the options in use are passed on: a subclass's make_net (an MLP) need not take them.
        options = {
            name: value
            for name, value in (("cond_dim", cond_dim), ("attention_heads", attention_heads))
            if value
        }
        self.net = self.make_net(
            cond, changed * self.transform.params_per_dim, hidden, blocks, **options
        )

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        first, second = torch.split(x, self.sizes, dim=1)
        return (second, first) if self.swap else (first, second)

    def _merge(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.cat([b, a] if self.swap else [a, b], dim=1)

    def _params(self, a: Tensor, b: Tensor, cond: Condition | None) -> Tensor:
        check_condition(cond, self.cond_dim, "this coupling", a.shape[0])
        params = self.net(a) if cond is None else cond.params(self.net, a)  # (B, C_b * P, H, W)
        return params.view(b.shape[0], b.shape[1], self.transform.params_per_dim, *b.shape[2:])

    def forward(self, x: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        a, b = self._split(x)
        yb, ld = self.transform(b, self._params(a, b, cond))
        return self._merge(a.to(yb.dtype), yb), ld.flatten(1).sum(dim=1)

    def inverse(self, y: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        a, b = self._split(y)
        xb, ld = self.transform.inverse(b, self._params(a, b, cond))
        return self._merge(a.to(xb.dtype), xb), ld.flatten(1).sum(dim=1)


class CheckerboardCoupling(Bijection):
    """Checkerboard-mask coupling (RealNVP): pixels with ``(i + j + parity) % 2 == 0`` condition.

    With the binary mask ``m`` (1 on conditioning pixels, all channels):

    forward:  ``y = m·x + (1-m)·g(x; NN(m·x, c))``
    inverse:  ``x = m·y + (1-m)·g⁻¹(y; NN(m·y, c))``
    log-det:  ``Σ (1-m)·log|g'(x)|``

    ``c`` is an optional context ``[B, context_channels, H, W]`` passed to both directions (e.g.
    features of the image a dequantisation flow is conditioned on); without ``context_channels``
    there is none. ``transform`` is ``g``: a name for :func:`make_transform` or an
    :class:`ElementwiseTransform`.
    """

    def __init__(
        self,
        num_channels: int,
        hidden: int,
        transform: str | ElementwiseTransform = "affine",
        parity: int = 0,
        blocks: int = 0,
        context_channels: int = 0,
    ) -> None:
        super().__init__()
        self.parity = parity % 2
        self.context_channels = context_channels
        self.transform = as_transform(transform)
        self.net = make_conditioner(
            num_channels + 1 + context_channels,
            num_channels * self.transform.params_per_dim,
            hidden,
            blocks,
        )

    def _mask(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        ii = torch.arange(h, device=x.device).view(h, 1)
        jj = torch.arange(w, device=x.device).view(1, w)
        return ((ii + jj + self.parity) % 2 == 0).to(x.dtype).expand(x.shape[0], 1, h, w)

    def _params(self, x: Tensor, m: Tensor, context: Tensor | None) -> Tensor:
        if (context is None) != (self.context_channels == 0):
            raise ValueError(
                f"this coupling was built with context_channels={self.context_channels}: pass a "
                "context tensor exactly when context_channels > 0"
            )
        # The mask is fed as an extra channel so the network knows which pixels are observed.
        inputs = [x * m, m] if context is None else [x * m, m, context.to(x.dtype)]
        params = self.net(torch.cat(inputs, dim=1))
        return params.view(x.shape[0], x.shape[1], self.transform.params_per_dim, *x.shape[2:])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        m = self._mask(x)
        y, ld = self.transform(x, self._params(x, m, context))
        keep = 1 - m
        return m * x + keep * y, (keep * ld).sum(dim=(1, 2, 3))

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        m = self._mask(y)
        x, ld = self.transform.inverse(y, self._params(y, m, context))
        keep = 1 - m
        return m * y + keep * x, (keep * ld).sum(dim=(1, 2, 3))
