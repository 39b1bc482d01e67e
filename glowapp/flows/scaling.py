"""NICE's diagonal scaling layer (Dinh et al. 2014, §3.3)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from glowapp.flows.base import Bijection


class DiagonalScaling(Bijection):
    """Elementwise scaling by learned per-dimension factors ``exp(log_s)``.

    forward: ``y = x · exp(log_s)``; inverse: ``x = y · exp(−log_s)``; log-det ``Σ log_s``.
    ``log_s`` has shape ``[C, H, W]`` (one factor per dimension, as in NICE) and starts at zero.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.log_s = nn.Parameter(torch.zeros(1, *shape))

    def _check(self, x: Tensor) -> None:
        if x.shape[1:] != self.log_s.shape[1:]:
            raise ValueError(
                f"DiagonalScaling was built for inputs of shape {tuple(self.log_s.shape[1:])}, "
                f"got {tuple(x.shape[1:])}"
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check(x)
        return x * self.log_s.exp(), self.log_s.sum().expand(x.shape[0])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        self._check(y)
        return y * (-self.log_s).exp(), -self.log_s.sum().expand(y.shape[0])
