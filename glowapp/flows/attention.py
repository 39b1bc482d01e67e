"""Self-attention over the pixels of a feature map, for coupling networks (Flow++, Ho et al. 2019).

A convolutional conditioner sees a few pixels around each output; an attention block lets every
position read every other one, which Flow++ found improves likelihoods of coupling flows. Here
it is a pre-norm residual block that starts as the identity, so inserting it into a conditioner
changes nothing until it is trained.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal_positions(
    h: int, w: int, channels: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Fixed 2-D sinusoidal position codes ``[H·W, channels]``, raster order.

    A quarter of the channels each carry ``sin(r ω_k)``, ``cos(r ω_k)``, ``sin(c ω_k)`` and
    ``cos(c ω_k)`` of the row ``r`` and column ``c``, with ``ω_k = 10000^(−k / (channels/4))``
    (Vaswani et al. 2017, per axis); leftover channels (``channels % 4``) get zeros.
    """
    quarter = channels // 4
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(quarter, device=device, dtype=torch.float64) / quarter
    )
    rows = torch.arange(h, device=device, dtype=torch.float64)[:, None] * freqs  # (H, q)
    cols = torch.arange(w, device=device, dtype=torch.float64)[:, None] * freqs  # (W, q)
    row_code = torch.cat([rows.sin(), rows.cos()], dim=1)[:, None].expand(h, w, 2 * quarter)
    col_code = torch.cat([cols.sin(), cols.cos()], dim=1)[None].expand(h, w, 2 * quarter)
    codes = torch.cat([row_code, col_code], dim=2).reshape(h * w, 4 * quarter)
    return F.pad(codes, (0, channels - 4 * quarter)).to(dtype)


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the ``H·W`` positions, as a residual block.

    With the pixels as tokens ``x_p ∈ R^C`` (``p`` in raster order):

    ``t_p = LayerNorm(x_p) + P_p``,
    ``(q, k, v) = W_qkv t``, per head ``softmax(q kᵀ / √d) v`` (``d = C / heads``),
    ``y_p = x_p + W_o · concat_heads(...)_p``.

    ``P`` are fixed sinusoidal codes of each pixel's row and column
    (:func:`sinusoidal_positions`): attention is otherwise blind to where a pixel is, and a fixed
    code costs nothing, needs no image size when the layer is built, and works at any size (a
    learned table would do neither). ``W_o`` (weights and bias) starts at zero, so the block is
    the identity at initialisation.

    Works on any memory layout and dtype; a channels-last input is already a ``[B, H·W, C]``
    token matrix in memory (no copy), and the output is channels-last again. The products run
    in :func:`~torch.nn.functional.scaled_dot_product_attention` (fused kernels where available,
    bf16/fp16 under autocast). Cost per image: ``O((H·W)² · C)`` for the attention itself plus
    ``4 H·W·C²`` multiply-adds for the projections.
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(
                f"self-attention needs heads >= 1 dividing the width, got {heads} heads for "
                f"{channels} channels"
            )
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = x.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view for channels-last x
        t = self.norm(tokens)
        t = t + sinusoidal_positions(h, w, c, t.device, t.dtype)
        # (B, T, 3, heads, d) -> three (B, heads, T, d)
        q, k, v = self.qkv(t).view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v)
        mixed = self.out(attended.transpose(1, 2).reshape(b, h * w, c))
        return x + mixed.view(b, h, w, c).permute(0, 3, 1, 2)
