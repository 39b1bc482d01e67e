"""Activation normalisation (Kingma & Dhariwal 2018, §3.1)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from glowapp.flows.base import Bijection


def _all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over all processes when torch.distributed is running (identity otherwise)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class ActNorm(Bijection):
    """Per-channel affine map with data-dependent initialisation.

    forward:  ``y = (x + bias) * exp(log_scale)``
    inverse:  ``x = y * exp(-log_scale) - bias``
    log-det:  ``H * W * sum_c log_scale_c``

    On the first forward pass in training mode, ``bias`` and ``log_scale`` are set so that
    the outputs of that batch have zero mean and unit variance per channel. Under
    ``torch.distributed`` the first and second moments are all-reduced first, so every rank
    initialises from the union of all ranks' batches and ends with identical parameters.
    Whether initialisation has happened lives in the ``initialized`` buffer, so it is saved in
    checkpoints and a loaded model is never re-initialised.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))
        # Host-side mirror of the buffer so the hot path needs no device sync once initialised;
        # the buffer stays the source of truth (re-read after every state_dict load).
        self._known_initialized = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)
        self._known_initialized = False

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set parameters from the statistics of ``x`` (all-reduced over processes)."""
        x = x.detach().double()  # float64 sums: E[x²] − E[x]² cancels badly in float32
        count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
        s1 = x.sum(dim=(0, 2, 3)).double()
        s2 = (x * x).sum(dim=(0, 2, 3)).double()
        stats = _all_reduce_sum(torch.cat([count, s1, s2]))
        n, s1, s2 = stats[0], stats[1 : 1 + x.shape[1]], stats[1 + x.shape[1] :]
        mean = s1 / n
        var = (s2 / n - mean * mean).clamp_min(0.0)
        std = var.sqrt() + self.eps
        self.bias.copy_((-mean).view_as(self.bias).to(self.bias.dtype))
        self.log_scale.copy_((-std.log()).view_as(self.log_scale).to(self.log_scale.dtype))
        self.initialized.fill_(True)

    def _logdet(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        return (h * w * self.log_scale.sum()).expand(x.shape[0])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not self._known_initialized:
            if not bool(self.initialized):
                self.initialize(x)
            self._known_initialized = True
        y = (x + self.bias) * self.log_scale.exp()
        return y, self._logdet(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = y * (-self.log_scale).exp() - self.bias
        return x, -self._logdet(y)
