"""Conditioner networks for coupling layers and priors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glowapp.flows.attention import SelfAttention2d
from glowapp.flows.base import channel_linear


class _ChannelsLastGrad(torch.autograd.Function):
    """Identity; the backward hands the gradient on channels-last."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad.contiguous(memory_format=torch.channels_last)


def channels_last_grad(x: Tensor) -> Tensor:
    """``x``; if it is channels-last, its gradient will be too.

    Gradients arriving through views and selections (a coupling's ``params[:, :, k]``) come
    back NCHW; the convolution that made ``x`` would otherwise run its backward on mixed layouts.
    """
    if x.requires_grad and x.is_contiguous(memory_format=torch.channels_last):
        return _ChannelsLastGrad.apply(x)
    return x


class PointwiseConv2d(nn.Conv2d):
    """A 1×1 :class:`~torch.nn.Conv2d` computed by :func:`channel_linear` (one matrix product
    on channels-last inputs); same parameters and state-dict keys as ``nn.Conv2d(c_in, c_out, 1)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return channel_linear(x, self.weight.flatten(1), self.bias)


class ZeroConv2d(nn.Module):
    """3×3 convolution initialised to output exactly zero, with a learned per-channel log-scale.

    ``out = conv(x) * exp(3 * logs)``; weights, bias and ``logs`` start at zero, so any coupling
    or prior it parameterises starts as the identity / a standard normal.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.logs = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return channels_last_grad(self.conv(x)) * (3.0 * self.logs).exp()

    def folded(self) -> tuple[Tensor, Tensor]:
        """Weight and bias with the output scale folded in, for inference:
        ``conv(x; W, b) · exp(3·logs) = conv(x; W ⊙ s, b ⊙ s)`` with ``s = exp(3·logs)`` per
        output channel (composed in float64, returned in the weight's dtype)."""
        scale = (3.0 * self.logs.detach().double()).exp().flatten()
        weight = self.conv.weight.detach().double() * scale[:, None, None, None]
        bias = self.conv.bias.detach().double() * scale
        return weight.to(self.conv.weight.dtype), bias.to(self.conv.weight.dtype)


class ZeroLinear(nn.Linear):
    """``[B, in_features] -> [B, out_features]``, ``W e`` without bias, with ``W`` initialised to 0.

    Maps a label embedding to per-channel offsets of a layer's parameters: a fresh conditional
    layer ignores its label (it starts as its unconditional self) and learns to use it.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        nn.init.zeros_(self.weight)


class ConvNet(nn.Module):
    """Glow's conditioner: conv3×3 → ReLU → conv1×1 → ReLU → zero-initialised conv3×3.

    ``[B, in_channels, H, W] -> [B, out_channels, H, W]``; ``hidden`` is the width of both
    hidden layers.

    ``cond_dim = E > 0``: ``forward(x, e)`` takes label embeddings ``e`` ``[B, E]`` and adds
    ``W e`` (a :class:`ZeroLinear`) to the first hidden layer's pre-activations, one bias per
    channel and sample, ``a_1 = conv3×3(x) + (W e)[:, :, None, None]``.

    ``attention_heads > 0`` puts a :class:`~glowapp.flows.attention.SelfAttention2d` block
    between the two hidden layers, so every output sees every position (Flow++); it starts as
    the identity. Both options leave the default network's state-dict keys unchanged.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        cond_dim: int = 0,
        attention_heads: int = 0,
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            PointwiseConv2d(hidden, hidden),
            # Not in place: on channels-last inputs the 1×1 output is a permuted view, and an
            # in-place op on a view makes autograd copy its gradient back to NCHW.
            nn.ReLU(),
            ZeroConv2d(hidden, out_channels),
        )
        self.cond_proj = ZeroLinear(cond_dim, hidden) if cond_dim else None
        self.attention = SelfAttention2d(hidden, attention_heads) if attention_heads else None

    def forward(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:
        first, relu, pointwise, relu2, out = self.net
        h = first(x)
        if self.cond_proj is not None:
            if embedding is None:
                raise ValueError("this conditioner has cond_dim > 0: pass the label embeddings")
            h = h + self.cond_proj(embedding)[:, :, None, None]
        h = relu(h)
        if self.attention is not None:
            h = self.attention(h)
        return out(relu2(pointwise(h)))


class ResidualBlock(nn.Module):
    """``x + conv3×3(ReLU(conv3×3(ReLU(x))))`` at constant width (pre-activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class ResNet(nn.Module):
    """RealNVP's conditioner: conv3×3 in, ``blocks`` residual blocks, ReLU, zero-initialised conv3×3 out.

    ``cond_dim = E > 0``: ``forward(x, e)`` adds ``W e`` (a :class:`ZeroLinear` of the label
    embeddings ``[B, E]``) per channel to the input convolution's output, as :class:`ConvNet` does.
    """

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int, blocks: int, cond_dim: int = 0
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            *[ResidualBlock(hidden) for _ in range(blocks)],
            nn.ReLU(),
            ZeroConv2d(hidden, out_channels),
        )
        self.cond_proj = ZeroLinear(cond_dim, hidden) if cond_dim else None

    def forward(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:
        if self.cond_proj is None:
            return self.net(x)
        if embedding is None:
            raise ValueError("this conditioner has cond_dim > 0: pass the label embeddings")
        h = self.net[0](x) + self.cond_proj(embedding)[:, :, None, None]
        return self.net[1:](h)
