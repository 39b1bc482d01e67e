"""Batch normalisation as a bijection (Dinh et al. 2017, §3.7)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from glowapp.flows.base import Bijection


class BatchNormFlow(Bijection):
    """Per-channel batch normalisation with a learned affine, as an invertible layer.

    forward:  ``y = (x − μ) / sqrt(σ² + ε) · exp(log_γ) + β``
    inverse:  ``x = (y − β) · exp(−log_γ) · sqrt(σ² + ε) + μ``
    log-det:  ``H · W · Σ_c (log_γ_c − ½ log(σ²_c + ε))``

    In training mode ``μ, σ²`` are the batch statistics (and update running averages); in eval
    mode — and always in ``inverse`` — the running averages are used, so eval-mode forward and
    inverse are exact inverses of each other.
    """

    def __init__(self, num_channels: int, momentum: float = 0.05, eps: float = 1e-4) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.log_gamma = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.register_buffer("running_mean", torch.zeros(1, num_channels, 1, 1))
        self.register_buffer("running_var", torch.ones(1, num_channels, 1, 1))

    def _logdet(self, x: Tensor, var: Tensor) -> Tensor:
        per_channel = self.log_gamma - 0.5 * (var + self.eps).log()
        return (x.shape[2] * x.shape[3] * per_channel.sum()).expand(x.shape[0])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training:
            mean = x.mean(dim=(0, 2, 3), keepdim=True)
            var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(var.detach().to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean) * (var + self.eps).rsqrt() * self.log_gamma.exp() + self.beta
        return y, self._logdet(x, var)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        mean, var = self.running_mean, self.running_var
        x = (y - self.beta) * (-self.log_gamma).exp() * (var + self.eps).sqrt() + mean
        return x, -self._logdet(y, var)
