"""Space-to-depth reshaping (Dinh et al. 2017, §3.6)."""

from __future__ import annotations

import torch
from torch import Tensor

from glowapp.flows.base import Bijection, zero_logdet


class Squeeze(Bijection):
    """2×2 space-to-depth: ``[B, C, H, W] -> [B, 4C, H/2, W/2]``.

    Forward regroups each 2×2 spatial block into channels; inverse undoes it.
    A permutation of coordinates, so log|det J| = 0 both ways. Channels-last inputs give
    channels-last outputs (the same values), so a channels-last flow stays in one layout.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(
                f"Squeeze needs even height and width, got {h}x{w}; "
                "use an image size divisible by 2**levels."
            )
        if x.is_contiguous(memory_format=torch.channels_last):
            t = x.permute(0, 2, 3, 1).reshape(b, h // 2, 2, w // 2, 2, c)
            t = t.permute(0, 1, 3, 5, 2, 4)  # (B, H/2, W/2, C, 2, 2)
            return t.reshape(b, h // 2, w // 2, c * 4).permute(0, 3, 1, 2), zero_logdet(x)
        x = x.reshape(b, c, h // 2, 2, w // 2, 2)
        x = x.permute(0, 1, 3, 5, 2, 4)  # (B, C, 2, 2, H/2, W/2)
        return x.reshape(b, c * 4, h // 2, w // 2), zero_logdet(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        b, c4, h, w = y.shape
        if c4 % 4:
            raise ValueError(f"Unsqueeze needs channels divisible by 4, got {c4}.")
        c = c4 // 4
        if y.is_contiguous(memory_format=torch.channels_last):
            t = y.permute(0, 2, 3, 1).reshape(b, h, w, c, 2, 2)
            t = t.permute(0, 1, 4, 2, 5, 3)  # (B, H, 2, W, 2, C)
            return t.reshape(b, h * 2, w * 2, c).permute(0, 3, 1, 2), zero_logdet(y)
        y = y.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)  # (B, C, H, 2, W, 2)
        return y.reshape(b, c, h * 2, w * 2), zero_logdet(y)
