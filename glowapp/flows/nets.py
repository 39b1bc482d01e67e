"""Conditioner networks for coupling layers and priors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
        return self.conv(x) * (3.0 * self.logs).exp()


class ConvNet(nn.Module):
    """Glow's conditioner: conv3×3 → ReLU → conv1×1 → ReLU → zero-initialised conv3×3.

    ``[B, in_channels, H, W] -> [B, out_channels, H, W]``; ``hidden`` is the width of both
    hidden layers.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(inplace=True),
            ZeroConv2d(hidden, out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ResidualBlock(nn.Module):
    """``x + conv3×3(ReLU(conv3×3(ReLU(x))))`` at constant width (pre-activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class ResNet(nn.Module):
    """RealNVP's conditioner: conv3×3 in, ``blocks`` residual blocks, ReLU, zero-initialised conv3×3 out."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            *[ResidualBlock(hidden) for _ in range(blocks)],
            nn.ReLU(),
            ZeroConv2d(hidden, out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
