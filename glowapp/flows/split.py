"""Factor-out with learned Gaussian priors (Dinh et al. 2017 §3.6; Kingma & Dhariwal 2018).

Latents are returned *standardised*: a factored-out half ``z`` with prior ``N(μ, σ²)`` is
reported as ``ε = (z − μ) / σ``, and the ``−Σ log σ`` of that affine map joins the log-det.
The whole flow is then one bijection ``x → (ε_1, …, ε_L)`` with a standard-normal base, so
``decode([0, …, 0])`` is the prior mode and sampling at temperature ``T`` is
``decode([T·ε_1, …, T·ε_L])`` with ``ε ~ N(0, I)``: the std of every level's prior is scaled by
``T`` while its mean is kept.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from glowapp.flows.base import Bijection, at_least_float32
from glowapp.flows.nets import ZeroConv2d

_LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_prob(eps: Tensor) -> Tensor:
    """``Σ log N(ε; 0, I)`` over all but the batch dimension, in float32 nats: ``[B, ...] -> [B]``."""
    eps = at_least_float32(eps)
    return -0.5 * (eps * eps + _LOG_2PI).flatten(1).sum(dim=1)


class Split(nn.Module):
    """Factor out half the channels, scored under a Gaussian conditioned on the kept half.

    ``x = [h, z]`` along channels (``h`` keeps ``C // 2``), ``(μ, log σ) = ZeroConv(h)``.

    forward:  ``x -> (h, ε)`` with ``ε = (z − μ) · exp(−log σ)``, log-det ``−Σ log σ``
    inverse:  ``(h, ε) -> x = [h, μ + exp(log σ) · ε]``, log-det ``+Σ log σ``

    The conditioning conv is zero-initialised, so the prior starts as ``N(0, I)``.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        if num_channels < 2:
            raise ValueError(f"Split needs at least 2 channels, got {num_channels}")
        self.kept = num_channels // 2
        self.prior = ZeroConv2d(self.kept, 2 * (num_channels - self.kept))

    def _mean_log_std(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = at_least_float32(self.prior(h)).chunk(2, dim=1)
        return mean, log_std

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h, z = x[:, : self.kept], x[:, self.kept :]
        mean, log_std = self._mean_log_std(h)
        eps = (at_least_float32(z) - mean) * (-log_std).exp()
        return h, eps, -log_std.flatten(1).sum(dim=1)

    def inverse(self, h: Tensor, eps: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self._mean_log_std(h)
        z = mean + log_std.exp() * at_least_float32(eps)
        return torch.cat([h.to(z.dtype), z], dim=1), log_std.flatten(1).sum(dim=1)


class TopPrior(Bijection):
    """Learned Gaussian ``N(μ, σ²)`` for the top latent, as a standardising bijection.

    forward: ``ε = (h − μ) · exp(−log σ)``, log-det ``−H·W·Σ_c log σ_c``; inverse: ``h = μ + σ·ε``,
    log-det ``+H·W·Σ_c log σ_c``. ``μ`` and ``log σ`` are per channel and start at zero (a
    standard normal prior).

    Class-conditional (``num_classes > 0``, Kingma & Dhariwal 2018 §5): ``(μ, log σ)`` also get
    a per-class offset, ``μ_y = μ + E_μ[y]`` and ``log σ_y = log σ + E_σ[y]``, from a learned
    embedding ``E`` of the label (a linear map of its one-hot vector), zero-initialised so
    training starts at the unconditional prior. Both directions then take ``labels`` ``[B]``
    (int64 in ``0..num_classes−1``).
    """

    def __init__(self, num_channels: int, num_classes: int = 0) -> None:
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = unconditional), got {num_classes}")
        self.num_classes = num_classes
        self.mean = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.log_std = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.embedding = nn.Embedding(num_classes, 2 * num_channels) if num_classes else None
        if self.embedding is not None:
            nn.init.zeros_(self.embedding.weight)

    def mean_log_std(self, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(μ, log σ)``: ``[1, C, 1, 1]`` each, or ``[B, C, 1, 1]`` for a conditional prior."""
        if self.embedding is None:
            if labels is not None:
                raise ValueError(
                    "labels were given to an unconditional prior (num_classes=0); build the model "
                    "with num_classes > 0 to condition on labels, or pass labels=None"
                )
            return self.mean, self.log_std
        if labels is None:
            raise ValueError(
                f"the model is class-conditional (num_classes={self.num_classes}): pass the "
                "images' labels (y=...)"
            )
        offset = self.embedding(labels)[:, :, None, None]  # (B, 2C, 1, 1)
        mean, log_std = offset.chunk(2, dim=1)
        return self.mean + mean, self.log_std + log_std

    def _logdet(self, x: Tensor, log_std: Tensor) -> Tensor:
        return x.shape[2] * x.shape[3] * log_std.flatten(1).sum(dim=1).expand(x.shape[0])

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mean, log_std = self.mean_log_std(labels)
        eps = (at_least_float32(x) - mean) * (-log_std).exp()
        return eps, -self._logdet(x, log_std)

    def inverse(self, eps: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mean, log_std = self.mean_log_std(labels)
        h = mean + log_std.exp() * at_least_float32(eps)
        return h, self._logdet(eps, log_std)
