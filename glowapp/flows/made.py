"""MADE: masked autoencoder for distribution estimation (Germain et al. 2015), the conditioner of
the autoregressive flows in :mod:`glowapp.flows.autoregressive`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedLinear(nn.Linear):
    """``y = (W ⊙ M) x + b`` with a fixed binary ``mask`` ``M`` ``[out, in]`` (a buffer)."""

    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """An MLP ``[B, dim] -> [B, dim, params_per_dim]`` whose output ``i`` depends only on the
    inputs that come before ``i`` in ``order`` (Germain et al. 2015).

    Every unit gets a degree: input ``order[k]`` has degree ``k + 1``; hidden units cycle through
    ``1 … max(dim − 1, 1)`` (Germain et al. draw them at random; cycling puts every degree in
    every layer, so no input is cut off); the outputs of input ``i`` share its degree. A weight
    from a unit of degree ``m`` to a hidden unit of degree ``m'`` is kept iff ``m' ≥ m``, and to an
    output unit iff ``m' > m`` (strict): the Jacobian ``∂out_i/∂x`` is zero on and after ``i``'s
    place in the order, so the first variable's outputs are constants (the biases).

    ``order``: a permutation of ``range(dim)``; ``None`` draws one at random (``torch.randperm``,
    global RNG). Degrees and masks are buffers, so a random order is saved with the weights.
    The output layer starts at zero: the autoregressive transform starts as the identity.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        params_per_dim: int,
        order: Sequence[int] | None = None,
        hidden_layers: int = 2,
    ) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or hidden_layers < 1:
            raise ValueError(
                f"MADE needs dim, hidden and hidden_layers >= 1, got {dim}, {hidden}, {hidden_layers}"
            )
        perm = torch.randperm(dim) if order is None else torch.as_tensor(list(order))
        if sorted(perm.tolist()) != list(range(dim)):
            raise ValueError(f"order must be a permutation of range({dim}), got {perm.tolist()}")
        self.params_per_dim = params_per_dim
        degrees = torch.empty(dim, dtype=torch.long)
        degrees[perm] = torch.arange(1, dim + 1)
        self.register_buffer("degrees", degrees)  # degree of input i
        hidden_degrees = torch.arange(hidden) % max(dim - 1, 1) + 1
        out_degrees = degrees.repeat_interleave(params_per_dim)  # output i·P + p belongs to i
        layers: list[nn.Module] = []
        previous = degrees
        for _ in range(hidden_layers):
            layers += [MaskedLinear(hidden_degrees[:, None] >= previous[None, :]), nn.Tanh()]
            previous = hidden_degrees
        last = MaskedLinear(out_degrees[:, None] > previous[None, :])
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).view(x.shape[0], x.shape[1], self.params_per_dim)
