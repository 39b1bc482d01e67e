"""Space-to-depth reshaping (Dinh et al. 2017, §3.6)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from glowapp.flows.base import Bijection, zero_logdet


class Squeeze(Bijection):
    """2×2 space-to-depth: ``[B, C, H, W] -> [B, 4C, H/2, W/2]``.

    Forward regroups each 2×2 spatial block into channels, channel ``c`` of pixel ``(2i+di,
    2j+dj)`` going to channel ``4c + 2di + dj`` of pixel ``(i, j)`` (``pixel_unshuffle``); inverse
    undoes it (``pixel_shuffle``). A permutation of coordinates, so log|det J| = 0 both ways.
    Both keep the input's memory layout, so a channels-last flow stays channels-last.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _, _, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(
                f"Squeeze needs even height and width, got {h}x{w}; "
                "use an image size divisible by 2**levels."
            )
        return F.pixel_unshuffle(x, 2), zero_logdet(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        _, c4, _, _ = y.shape
        if c4 % 4:
            raise ValueError(f"Unsqueeze needs channels divisible by 4, got {c4}.")
        return F.pixel_shuffle(y, 2), zero_logdet(y)
