"""Space-to-depth reshaping (Dinh et al. 2017, §3.6)."""

from __future__ import annotations

import torch
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

    @staticmethod
    def check_input(x: Tensor) -> None:
        """Raise a ValueError unless ``x`` has even height and width."""
        _, _, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(
                f"Squeeze needs even height and width, got {h}x{w}; "
                "use an image size divisible by 2**levels."
            )

    @staticmethod
    def check_output(y: Tensor) -> None:
        """Raise a ValueError unless ``y``'s channels are divisible by 4."""
        if y.shape[1] % 4:
            raise ValueError(f"Unsqueeze needs channels divisible by 4, got {y.shape[1]}.")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.check_input(x)
        return F.pixel_unshuffle(x, 2), zero_logdet(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        self.check_output(y)
        return F.pixel_shuffle(y, 2), zero_logdet(y)


def space_to_depth_channels_last(x: Tensor) -> Tensor:
    """:class:`Squeeze`'s forward, always returning a channels-last tensor (for inference).

    ``y[b, 4c + 2di + dj, i, j] = x[b, c, 2i + di, 2j + dj]``, as ``pixel_unshuffle``; it is
    written as one copy into ``[B, H/2, W/2, C, 2, 2]`` order, so a 1-channel (or NCHW) input
    gives channels-last activations too (``pixel_unshuffle`` keeps the input's layout, which for
    ``[B, 1, H, W]`` is NCHW).
    """
    b, c, h, w = x.shape
    blocks = x.unflatten(3, (w // 2, 2)).unflatten(2, (h // 2, 2))  # [B, C, H/2, 2, W/2, 2]
    nhwc = blocks.permute(0, 2, 4, 1, 3, 5).reshape(b, h // 2, w // 2, 4 * c)
    return nhwc.permute(0, 3, 1, 2)


def depth_to_space_channels_last(y: Tensor) -> Tensor:
    """:class:`Squeeze`'s inverse (``pixel_shuffle``), always returning a channels-last tensor:
    ``x[b, c, 2i + di, 2j + dj] = y[b, 4c + 2di + dj, i, j]``."""
    b, c4, h, w = y.shape
    blocks = y.unflatten(1, (c4 // 4, 2, 2))  # [B, C, 2, 2, H, W]
    nhwc = blocks.permute(0, 4, 2, 5, 3, 1).reshape(b, 2 * h, 2 * w, c4 // 4)
    return nhwc.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
