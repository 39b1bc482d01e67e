"""Inference-time folding: Glow's layers evaluated with their fixed linear parts composed.

Once trained, a flow is a fixed function, and in eval mode with autograd off (sampling,
scoring) some of its work can be done once instead of on every call. Each class here evaluates
one layer (or a pair of layers) of a flow the same way as the layer itself, to float tolerance,
but faster:

* :class:`FoldedChannelMap` — ActNorm followed by a channel mixing (LU or plain 1×1
  convolution, or a fixed permutation) is one affine map per pixel,
  ``y = W (s ⊙ (x + b)) = A x + a`` with ``A = W diag(s)``, ``a = W (s ⊙ b)``,
  ``s = exp(log_scale)``; its inverse ``x = A⁻¹ y − b`` with ``A⁻¹ = diag(1/s) W⁻¹``; and its
  log-det ``H·W·(Σ log s + log|det W|)`` a constant. One 1×1 convolution instead of three
  passes over the activations; all composed in float64 and cast.
* :class:`FoldedCoupling` — a Glow coupling whose network's last layer (a
  :class:`~glowapp.flows.nets.ZeroConv2d`) has its output scale ``exp(3·logs)`` folded into its
  weights; for affine couplings its output channels are also reordered (shifts, then scales)
  and the scale rows divided by the soft bound ``B``, so that
  ``log s = B · tanh(raw / B)`` costs one in-place ``tanh`` and ``mul``. Activations are kept
  channels-last, ReLUs run in place, the 1×1 layer is a oneDNN convolution, and log-dets are
  only summed when asked for (sampling needs none). A last layer with few outputs (an affine
  coupling of a 4-channel level has 4) runs as one matrix product over its nine stacked taps
  and shifted sums (:func:`conv3x3_by_taps`) wherever that beats the direct convolution.
* :class:`FoldedSplit` — a factor-out whose prior network is folded the same way.

Every folded tensor lives in a :class:`FoldCache`, recomputed whenever one of the tensors it was
computed from changes: a new version (in-place writes: optimizer steps, ``load_state_dict``),
a new storage, dtype or device (``.to()``, ``.data = …``), or
:func:`~glowapp.flows.base.weight_writes` (writes through ``.data``, which version counters do
not see). Nothing here runs in training mode or with gradients enabled: the model decides that
(see :class:`InferencePlan`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glowapp.flows.actnorm import ActNorm
from glowapp.flows.base import (
    Bijection,
    FlowSequential,
    at_least_float32,
    forward_with,
    inverse_with,
    weight_writes,
    zero_logdet,
)
from glowapp.flows.conditioning import Condition
from glowapp.flows.conv1x1 import ChannelPermutation, InvConv1x1, InvConv1x1LU
from glowapp.flows.coupling import AdditiveTransform, AffineTransform, ChannelCoupling
from glowapp.flows.nets import ConvNet, ZeroConv2d
from glowapp.flows.split import Split
from glowapp.flows.squeeze import (
    Squeeze,
    depth_to_space_channels_last,
    space_to_depth_channels_last,
)

T = TypeVar("T")
CacheKey = tuple[object, ...]


def channels_last(t: Tensor) -> Tensor:
    """``t`` in channels-last (NHWC) memory; ``t`` itself if it already is."""
    return t.contiguous(memory_format=torch.channels_last)


def tensor_key(tensors: Sequence[Tensor]) -> CacheKey | None:
    """What identifies the values of ``tensors`` without reading them: version, storage, dtype
    and device of each, and :func:`weight_writes`; None for inference tensors (no version)."""
    if any(t.is_inference() for t in tensors):
        return None
    return (weight_writes(), *((t._version, t.data_ptr(), t.dtype, t.device) for t in tensors))


class FoldCache(Generic[T]):
    """``compute()``, recomputed only when :func:`tensor_key` of ``sources()`` changes.

    ``sources`` returns the tensors the result is computed from (read anew on every call, so a
    parameter replaced by another is noticed too).
    """

    def __init__(self, sources: Callable[[], list[Tensor]], compute: Callable[[], T]) -> None:
        self.sources, self.compute = sources, compute
        self._key: CacheKey | None = None
        self._value: T | None = None

    def get(self) -> T:
        key = tensor_key(self.sources())
        if key is None or key != self._key or self._value is None:
            self._value = self.compute()
            self._key = key
        return self._value


def module_tensors(*modules: nn.Module | None) -> list[Tensor]:
    """Every parameter and buffer of ``modules`` (None skipped)."""
    return [
        t
        for m in modules
        if m is not None
        for t in (*m.parameters(recurse=True), *m.buffers(recurse=True))
    ]


# ---- ActNorm ∘ channel mixing ------------------------------------------------------------
def is_channel_matrix(layer: nn.Module) -> bool:
    """Whether ``layer`` is ``y = W x`` per pixel with a ``matrix()`` and a ``log_abs_det()``
    (the 1×1 convolutions and :class:`~glowapp.flows.conv1x1.ChannelPermutation`)."""
    return type(layer) in (InvConv1x1, InvConv1x1LU, ChannelPermutation)


@dataclass(frozen=True)
class AffineMap:
    """``y = A x + a`` per pixel (``A`` as a ``[C, C, 1, 1]`` kernel), its inverse
    ``x = A⁻¹ y + c`` in the parameters' dtype, and ``log|det A|`` (a float64 scalar)."""

    weight: Tensor
    bias: Tensor
    inverse_weight: Tensor
    inverse_bias: Tensor
    log_abs_det: Tensor


class FoldedChannelMap:
    """An ActNorm and the channel mixing after it (either may be absent) as one affine map.

    forward: ``y = W (s ⊙ (x + b)) = A x + a``, ``A = W diag(s)``, ``a = W (s ⊙ b)``
    inverse: ``x = A⁻¹ y − b``, ``A⁻¹ = diag(1/s) W⁻¹``
    log-det: ``H·W·(Σ_c log s_c + log|det W|)`` (negated on inverse)

    with ``s = exp(log_scale)``. Composed in float64 (``W⁻¹`` by ``inv``), then cast to the
    parameters' dtype.
    """

    def __init__(self, actnorm: ActNorm | None, mixer: Bijection | None) -> None:
        if actnorm is None and mixer is None:
            raise ValueError("a channel map needs an ActNorm, a channel mixing, or both")
        self.actnorm, self.mixer = actnorm, mixer
        self.cache = FoldCache(lambda: module_tensors(actnorm, mixer), self._fold)

    def _fold(self) -> AffineMap:
        tensors = module_tensors(self.actnorm, self.mixer)
        device = tensors[0].device
        # A permutation alone has no floating-point tensor: the input's dtype decides (apply).
        dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
        with torch.autocast(device.type, enabled=False):
            if self.mixer is not None:
                w = self.mixer.matrix().detach().double()
                log_det_w = self.mixer.log_abs_det().detach().double()
            else:
                c = self.actnorm.bias.shape[1]  # type: ignore[union-attr]
                w = torch.eye(c, dtype=torch.float64, device=device)
                log_det_w = torch.zeros((), dtype=torch.float64, device=device)
            if self.actnorm is not None:
                log_s = self.actnorm.log_scale.detach().double().flatten()
                b = self.actnorm.bias.detach().double().flatten()
            else:
                log_s = torch.zeros(w.shape[0], dtype=torch.float64, device=device)
                b = torch.zeros_like(log_s)
            s = log_s.exp()
            a_mat = w * s[None, :]
            a_inv = torch.linalg.inv(w) * (1.0 / s)[:, None]
            bias = w @ (s * b)
        return AffineMap(
            weight=a_mat.to(dtype)[:, :, None, None].contiguous(),
            bias=bias.to(dtype),
            inverse_weight=a_inv.to(dtype)[:, :, None, None].contiguous(),
            inverse_bias=(-b).to(dtype),
            log_abs_det=log_s.sum() + log_det_w,
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(A x + a, log|det| [B])``."""
        m = self.cache.get()
        y = F.conv2d(x, m.weight.to(x.dtype), m.bias.to(x.dtype))
        return y, self._logdet(x, m)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(A⁻¹ y − b, −log|det| [B])``."""
        m = self.cache.get()
        x = F.conv2d(y, m.inverse_weight.to(y.dtype), m.inverse_bias.to(y.dtype))
        return x, -self._logdet(y, m)

    @staticmethod
    def _logdet(x: Tensor, m: AffineMap) -> Tensor:
        """``H·W·log|det A|`` for each sample, ``[B]``, at least float32 (a 0-dim tensor would
        not promote a float32 accumulator to a float64 model's precision)."""
        logdet = (x.shape[2] * x.shape[3] * m.log_abs_det).to(at_least_float32(x).dtype)
        return logdet.expand(x.shape[0])


# ---- the coupling network ------------------------------------------------------------------
@dataclass(frozen=True)
class ConvNetWeights:
    """A :class:`~glowapp.flows.nets.ConvNet`'s weights as inference uses them: channels-last
    kernels, and the last layer with its scale (and any row order and row scaling) folded in."""

    first: Tensor
    first_bias: Tensor
    pointwise: Tensor
    pointwise_bias: Tensor
    last: Tensor
    last_bias: Tensor
    last_taps: Tensor | None = None


def fold_conv_net(
    net: ConvNet, order: Tensor | None = None, row_scale: Tensor | None = None
) -> ConvNetWeights:
    """``net``'s weights for :func:`run_conv_net`: the :class:`ZeroConv2d`'s output scale
    folded into its weights, its output rows permuted by ``order`` and multiplied by
    ``row_scale`` (both optional, in the permuted order)."""
    first, _, pointwise, _, last = net.net
    weight, bias = last.folded()
    if order is not None:
        weight, bias = weight[order], bias[order]
    if row_scale is not None:
        scale = row_scale.to(weight)
        weight, bias = weight * scale[:, None, None, None], bias * scale
    return ConvNetWeights(
        first=channels_last(first.weight.detach()),
        first_bias=first.bias.detach(),
        pointwise=pointwise.weight.detach(),
        pointwise_bias=pointwise.bias.detach(),
        last=channels_last(weight),
        last_bias=bias,
        last_taps=stacked_taps(weight) if last.conv.padding == (1, 1) else None,
    )


def run_conv_net(net: ConvNet, w: ConvNetWeights, x: Tensor) -> Tensor:
    """``net(x)`` with folded weights ``w`` (see :func:`fold_conv_net`), channels-last, the
    ReLUs in place, the 1×1 layer as a oneDNN convolution; the last layer by
    :func:`conv3x3_by_taps` where :func:`taps_pay` (an NCHW result then)."""
    first, _, _, _, last = net.net
    h = F.conv2d(channels_last(x), w.first, w.first_bias, padding=first.padding).relu_()
    if net.attention is not None:
        h = net.attention(h)
    h = F.conv2d(channels_last(h), w.pointwise, w.pointwise_bias).relu_()
    if w.last_taps is not None and taps_pay(w.last.shape[0], h.shape[2], h.shape[3]):
        return conv3x3_by_taps(h, w.last_taps, w.last_bias)
    return F.conv2d(h, w.last, w.last_bias, padding=last.conv.padding)


# ---- narrow 3×3 convolutions ------------------------------------------------------------------
def stacked_taps(weight: Tensor) -> Tensor | None:
    """A ``[C_out, C_in, 3, 3]`` kernel as ``[9·C_out, C_in]``, rows ordered (tap row, tap
    column, output channel), for :func:`conv3x3_by_taps`; None for other kernel sizes."""
    c_out, c_in, kh, kw = weight.shape
    if (kh, kw) != (3, 3):
        return None
    return weight.permute(2, 3, 0, 1).reshape(9 * c_out, c_in).contiguous()


def taps_pay(out_channels: int, height: int, width: int) -> bool:
    """Whether :func:`conv3x3_by_taps` beats oneDNN's direct convolution for this output.

    oneDNN vectorises a direct convolution over output channels in blocks of 16 (AVX-512), so
    a layer with 4 outputs costs as much as one with 16. Measured (``[32, 128, H, W]`` inputs,
    Xeon with AVX-512, 1 and 2 threads): ×1.7–3.0 faster with ≤ 4 outputs at 8×8 and up,
    ×1.2–1.6 with 6–8 outputs at 16×16, a tie at 8 outputs on 8×8, slower from 12 outputs on.
    """
    pixels = height * width
    return (out_channels <= 4 and pixels >= 64) or (out_channels <= 8 and pixels >= 256)


def conv3x3_by_taps(x: Tensor, taps: Tensor, bias: Tensor) -> Tensor:
    """A 3×3 convolution with zero padding 1 as one wide matrix product and shifted sums.

    With the kernel's nine taps stacked (:func:`stacked_taps`),
    ``Z = taps · Xᵀ`` ``[3, 3, C_out, B, H, W]`` holds every tap's contribution at every pixel,
    and ``y[b, o, i, j] = bias[o] + Σ_{u,v} Z[u, v, o, b, i + u − 1, j + v − 1]`` (terms outside
    the image dropped: the zero padding). The product is dense and vectorises over pixels; the
    nine sums run on contiguous rows. ``x`` is best channels-last (``Xᵀ`` is then a view);
    the result is ``[B, C_out, H, W]``, NCHW-contiguous.
    """
    b, c_in, h, w = x.shape
    c_out = taps.shape[0] // 9
    z = torch.mm(taps, x.permute(0, 2, 3, 1).reshape(-1, c_in).t()).view(3, 3, c_out, b, h, w)
    out = z[1, 1] + bias.view(-1, 1, 1, 1)
    for u in range(3):
        for v in range(3):
            if (u, v) == (1, 1):
                continue
            rows, cols = _shifted(u - 1, h), _shifted(v - 1, w)
            out[..., rows[0], cols[0]] += z[u, v, ..., rows[1], cols[1]]
    return out.permute(1, 0, 2, 3).contiguous()


def _shifted(offset: int, size: int) -> tuple[slice, slice]:
    """Output and input index ranges along one axis for a tap at ``offset`` ∈ {−1, 0, 1}:
    ``out[i] += z[i + offset]`` for every ``i`` with ``0 ≤ i + offset < size``."""
    return slice(max(0, -offset), size - max(0, offset)), slice(
        max(0, offset), size + min(0, offset)
    )


def supports_conv_net(net: nn.Module) -> bool:
    """Whether :func:`run_conv_net` evaluates ``net``: Glow's unconditional ConvNet."""
    return type(net) is ConvNet and net.cond_proj is None and isinstance(net.net[4], ZeroConv2d)


# ---- couplings ------------------------------------------------------------------------------
class FoldedCoupling:
    """A :class:`~glowapp.flows.coupling.ChannelCoupling` with a Glow :class:`ConvNet`,
    evaluated with folded weights (see the module docstring).

    Affine: the network's output is laid out ``[shift_1..shift_C, raw_1/B..raw_C/B]``, so
    ``log s = B·tanh(raw/B)`` and ``y_b = x_b·exp(log s) + shift`` (inverse
    ``x_b = (y_b − shift)·exp(−log s)``) run in place on it. Additive: ``y_b = x_b + shift``.
    Any other elementwise transform gets the network's output in the layer's own layout
    ``[B, C_b, P, H, W]`` and runs as the layer runs it.
    """

    def __init__(self, coupling: ChannelCoupling) -> None:
        if not self.supports(coupling):
            raise ValueError(f"cannot fold {type(coupling).__name__}")
        self.coupling = coupling
        self.transform = coupling.transform
        self.affine = type(self.transform) is AffineTransform
        self.additive = type(self.transform) is AdditiveTransform
        net = coupling.net
        self.cache = FoldCache(lambda: module_tensors(net), self._fold)

    @staticmethod
    def supports(layer: nn.Module) -> bool:
        """Unconditional channel couplings with Glow's ConvNet (any elementwise transform)."""
        return (
            type(layer) is ChannelCoupling
            and not layer.conditional
            and supports_conv_net(layer.net)
        )

    def _fold(self) -> ConvNetWeights:
        net = self.coupling.net
        if not self.affine:
            return fold_conv_net(net)
        changed = self.coupling.sizes[0] if self.coupling.swap else self.coupling.sizes[1]
        # The network's rows are (channel, parameter) pairs, parameter 0 the shift, 1 the raw
        # scale: take all shifts, then all raw scales divided by the bound.
        order = torch.arange(2 * changed).view(changed, 2).t().flatten()
        row_scale = torch.ones(2 * changed, dtype=torch.float64)
        row_scale[changed:] = 1.0 / self.transform.scale_bound
        return fold_conv_net(net, order.to(net.net[4].conv.weight.device), row_scale)

    def _halves(self, x: Tensor) -> tuple[slice, slice]:
        """The channel slices of the conditioning half ``a`` and the transformed half ``b``."""
        first = slice(0, self.coupling.sizes[0])
        second = slice(self.coupling.sizes[0], x.shape[1])
        return (second, first) if self.coupling.swap else (first, second)

    def _transform(
        self, b: Tensor, p: Tensor, inverse: bool, with_logdet: bool
    ) -> tuple[Tensor, Tensor | None]:
        """``g(b; p)`` or ``g⁻¹(b; p)`` and its log-det ``[B]`` (None unless ``with_logdet``)."""
        c = b.shape[1]
        if self.affine or self.additive:
            # NCHW: tanh, exp and the rest then run on contiguous channel blocks, which
            # vectorises (a channel slice of a channels-last tensor does not).
            p = p.contiguous()
        if self.affine:
            shift, log_s = p[:, :c], p[:, c:].tanh_().mul_(self.transform.scale_bound)
            logdet = log_s.sum(dim=(1, 2, 3)) if with_logdet else None
            if inverse:
                return (b - shift).mul_(log_s.neg_().exp_()), (None if logdet is None else -logdet)
            return torch.addcmul(shift, b, log_s.exp_()), logdet
        if self.additive:
            return (b - p if inverse else b + p), (b.new_zeros(b.shape[0]) if with_logdet else None)
        # Other transforms (splines) read the parameters of each element along the last axis
        # (``movedim``), contiguous in the network's channels-last output.
        params = p.view(b.shape[0], c, self.transform.params_per_dim, *b.shape[2:])
        value, ld = (self.transform.inverse if inverse else self.transform)(b, params)
        return value, (ld.flatten(1).sum(dim=1) if with_logdet else None)

    def _run(self, x: Tensor, inverse: bool, with_logdet: bool) -> tuple[Tensor, Tensor | None]:
        sa, sb = self._halves(x)
        a = x[:, sa]
        p = run_conv_net(self.coupling.net, self.cache.get(), a)
        value, logdet = self._transform(x[:, sb], p, inverse, with_logdet)
        out = torch.empty_like(x, memory_format=torch.channels_last)
        out[:, sa] = a
        out[:, sb] = value
        return out, logdet

    def forward(
        self, x: Tensor, with_logdet: bool = True, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``(y, log|det ∂y/∂x| [B] or None)``, as ``coupling(x)``."""
        return self._run(x, inverse=False, with_logdet=with_logdet)

    def inverse(
        self, y: Tensor, with_logdet: bool = True, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``(x, log|det ∂x/∂y| [B] or None)``, as ``coupling.inverse(y)``."""
        return self._run(y, inverse=True, with_logdet=with_logdet)


# ---- factor-out ---------------------------------------------------------------------------
class FoldedSplit:
    """An unconditional :class:`~glowapp.flows.split.Split` with its prior's scale folded:
    ``(μ, log σ) = conv(h; W ⊙ s, b ⊙ s)``, ``s = exp(3·logs)``, the rest as the split."""

    def __init__(self, split: Split) -> None:
        if not self.supports(split):
            raise ValueError("cannot fold a conditional split")
        self.split = split
        self.cache = FoldCache(lambda: module_tensors(split.prior), self._fold)

    @staticmethod
    def supports(split: nn.Module) -> bool:
        return type(split) is Split and split.cond_proj is None

    def _fold(self) -> tuple[Tensor, Tensor]:
        weight, bias = self.split.prior.folded()
        return channels_last(weight), bias

    def _mean_log_std(self, h: Tensor) -> tuple[Tensor, Tensor]:
        weight, bias = self.cache.get()
        padding = self.split.prior.conv.padding
        params = F.conv2d(channels_last(h), weight, bias, padding=padding).contiguous()
        return params.chunk(2, dim=1)  # NCHW: see FoldedCoupling._transform

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(h, ε, log-det [B])`` as ``split(x)``; ``h`` channels-last."""
        h, z = channels_last(x[:, : self.split.kept]), x[:, self.split.kept :]
        mean, log_std = self._mean_log_std(h)
        logdet = -log_std.sum(dim=(1, 2, 3))
        eps = (z - mean).mul_(log_std.neg_().exp_())
        return h, eps, logdet

    def inverse(
        self, h: Tensor, eps: Tensor, with_logdet: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """``(x, log-det [B] or None)`` as ``split.inverse(h, ε)``; ``x`` channels-last."""
        mean, log_std = self._mean_log_std(h)
        logdet = log_std.sum(dim=(1, 2, 3)) if with_logdet else None
        kept = self.split.kept
        shape = (h.shape[0], kept + mean.shape[1], *h.shape[2:])
        out = torch.empty(shape, dtype=h.dtype, device=h.device, memory_format=torch.channels_last)
        out[:, :kept] = h
        torch.addcmul(mean, log_std.exp_(), eps.to(mean.dtype), out=out[:, kept:])
        return out, logdet


# ---- a multi-scale flow's levels and splits ---------------------------------------------------
class PlainLayer:
    """A layer that is not folded, run as it is (its log-det is always computed), with the
    pass's condition if it is a conditional layer."""

    def __init__(self, layer: Bijection) -> None:
        self.layer = layer

    def forward(
        self, x: Tensor, with_logdet: bool = True, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor | None]:
        return forward_with(self.layer, x, cond)

    def inverse(
        self, y: Tensor, with_logdet: bool = True, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor | None]:
        return inverse_with(self.layer, y, cond)


class FoldedSqueeze:
    """:class:`~glowapp.flows.squeeze.Squeeze` with channels-last outputs (log-det 0)."""

    def forward(
        self, x: Tensor, with_logdet: bool = True, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor | None]:
        Squeeze.check_input(x)
        return space_to_depth_channels_last(x), None

    def inverse(
        self, y: Tensor, with_logdet: bool = True, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor | None]:
        Squeeze.check_output(y)
        return depth_to_space_channels_last(y), None


class FoldedMap:
    """:class:`FoldedChannelMap` with the interface of the other steps."""

    def __init__(self, actnorm: ActNorm | None, mixer: Bijection | None) -> None:
        self.map = FoldedChannelMap(actnorm, mixer)

    def forward(
        self, x: Tensor, with_logdet: bool = True, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor | None]:
        return self.map.forward(x)

    def inverse(
        self, y: Tensor, with_logdet: bool = True, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor | None]:
        return self.map.inverse(y)


Step = PlainLayer | FoldedSqueeze | FoldedMap | FoldedCoupling


def leaves(layer: Bijection) -> list[Bijection]:
    """``layer`` with every plain :class:`~glowapp.flows.base.FlowSequential` in it (its
    subclasses that keep its ``forward`` and ``inverse``, as Glow's steps) flattened."""
    composition = (
        isinstance(layer, FlowSequential)
        and type(layer).forward is FlowSequential.forward
        and type(layer).inverse is FlowSequential.inverse
    )
    return [leaf for sub in layer.layers for leaf in leaves(sub)] if composition else [layer]


def fold_steps(layers: Sequence[Bijection]) -> list[Step]:
    """The layers of a composition as steps: each ActNorm merged with the channel mixing right
    after it, couplings and squeezes folded where possible, the rest run as they are."""
    steps: list[Step] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        following = layers[i + 1] if i + 1 < len(layers) else None
        if type(layer) is ActNorm:
            mixer = following if following is not None and is_channel_matrix(following) else None
            steps.append(FoldedMap(layer, mixer))
            i += 1 if mixer is None else 2
            continue
        if is_channel_matrix(layer):
            steps.append(FoldedMap(None, layer))
        elif type(layer) is Squeeze:
            steps.append(FoldedSqueeze())
        elif FoldedCoupling.supports(layer):
            steps.append(FoldedCoupling(layer))  # type: ignore[arg-type]
        else:
            steps.append(PlainLayer(layer))
        i += 1
    return steps


def add_logdet(total: Tensor | None, ld: Tensor | None) -> Tensor | None:
    """``total + ld`` (None stays None: no log-det wanted; a None term adds nothing)."""
    return total if total is None or ld is None else total + ld


class InferencePlan:
    """A multi-scale flow's levels and splits as folded steps (see the module docstring).

    :meth:`encode_levels` and :meth:`decode_levels` do what
    :class:`~glowapp.models.MultiScaleFlow` does between its input and its top prior, with every
    activation channels-last. A conditional pass hands its
    :class:`~glowapp.flows.conditioning.Condition` to the layers that take one (they run as they
    are); the folded steps never depend on the label. Built by :meth:`build`, which returns None where no weights
    would be folded.
    """

    def __init__(self, levels: Sequence[Bijection], splits: Sequence[nn.Module]) -> None:
        self.levels = [fold_steps(leaves(level)) for level in levels]
        self.splits = [FoldedSplit(s) if FoldedSplit.supports(s) else s for s in splits]

    @classmethod
    def build(
        cls, levels: Sequence[Bijection], splits: Sequence[nn.Module]
    ) -> InferencePlan | None:
        """The plan, or None where it would fold no weights (only squeezes, at most)."""
        plan = cls(levels, splits)
        folded = any(
            isinstance(step, FoldedMap | FoldedCoupling) for steps in plan.levels for step in steps
        ) or any(isinstance(s, FoldedSplit) for s in plan.splits)
        return plan if folded else None

    def encode_levels(
        self, x: Tensor, cond: Condition | None = None
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """``x -> ([ε_1, …, ε_{L−1}], h_L, log|det| [B])`` (log-det at least float32)."""
        logdet = zero_logdet(x)
        latents: list[Tensor] = []
        h = x
        for i, steps in enumerate(self.levels):
            for step in steps:
                h, ld = step.forward(h, True, cond)
                if ld is not None:
                    logdet = logdet + ld
            if i < len(self.splits):
                split = self.splits[i]
                h, eps, ld = split.forward(h) if isinstance(split, FoldedSplit) else split(h, cond)
                latents.append(eps)
                logdet = logdet + ld
        return latents, h, logdet

    def decode_levels(
        self,
        h: Tensor,
        latents: Sequence[Tensor],
        with_logdet: bool,
        cond: Condition | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``h_L`` and ``[ε_1, …, ε_{L−1}]`` ``-> (x, log|det ∂x/∂(…)| or None)``: log-dets only
        ``with_logdet`` (sampling needs none)."""
        logdet = zero_logdet(h) if with_logdet else None
        h = channels_last(h)
        for i in reversed(range(len(self.levels))):
            if i < len(self.splits):
                split = self.splits[i]
                if isinstance(split, FoldedSplit):
                    h, ld = split.inverse(h, latents[i], with_logdet)
                else:
                    h, ld = split.inverse(h, channels_last(latents[i]), cond)
                logdet = add_logdet(logdet, ld)
            for step in reversed(self.levels[i]):
                h, ld = step.inverse(h, with_logdet, cond)
                logdet = add_logdet(logdet, ld)
        return h, logdet
