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
from glowapp.flows.conditioning import Condition, check_condition
from glowapp.flows.nets import ZeroConv2d, ZeroLinear

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

    Class-conditional (``cond_dim = E > 0``): both directions take a
    :class:`~glowapp.flows.conditioning.Condition` with label embeddings ``e`` ``[B, E]``, and

    ``(μ, log σ) = ZeroConv(h) + (W e)[:, :, None, None]``

    with ``W`` a zero-initialised :class:`~glowapp.flows.nets.ZeroLinear` (per-channel offsets;
    the prior starts label-independent). A guided condition mixes the offsets,
    ``(1 + w)·W c − w·W ∅``, which is ``cond.params`` of the whole expression since
    ``ZeroConv(h)`` is the same in both branches (see ``Condition.label_params``).
    """

    def __init__(self, num_channels: int, cond_dim: int = 0) -> None:
        super().__init__()
        if num_channels < 2:
            raise ValueError(f"Split needs at least 2 channels, got {num_channels}")
        self.kept = num_channels // 2
        self.cond_dim = cond_dim
        self.prior = ZeroConv2d(self.kept, 2 * (num_channels - self.kept))
        self.cond_proj = ZeroLinear(cond_dim, 2 * (num_channels - self.kept)) if cond_dim else None

    def _mean_log_std(self, h: Tensor, cond: Condition | None) -> tuple[Tensor, Tensor]:
        check_condition(cond, self.cond_dim, "this split's prior", h.shape[0])
        params = at_least_float32(self.prior(h))
        if cond is not None:
            offset = cond.label_params(self.cond_proj)  # (B, 2C_z)
            params = params + at_least_float32(offset)[:, :, None, None]
        mean, log_std = params.chunk(2, dim=1)
        return mean, log_std

    def forward(self, x: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor, Tensor]:
        h, z = x[:, : self.kept], x[:, self.kept :]
        mean, log_std = self._mean_log_std(h, cond)
        eps = (at_least_float32(z) - mean) * (-log_std).exp()
        return h, eps, -log_std.flatten(1).sum(dim=1)

    def inverse(
        self, h: Tensor, eps: Tensor, cond: Condition | None = None
    ) -> tuple[Tensor, Tensor]:
        mean, log_std = self._mean_log_std(h, cond)
        z = mean + log_std.exp() * at_least_float32(eps)
        return torch.cat([h.to(z.dtype), z], dim=1), log_std.flatten(1).sum(dim=1)


class TopPrior(Bijection):
    """Learned Gaussian ``N(μ, σ²)`` for the top latent, as a standardising bijection.

    forward: ``ε = (h − μ) · exp(−log σ)``, log-det ``−H·W·Σ_c log σ_c``; inverse: ``h = μ + σ·ε``,
    log-det ``+H·W·Σ_c log σ_c``. ``μ`` and ``log σ`` are per channel and start at zero (a
    standard normal prior).

    Class-conditional, two ways; both add per-class offsets, ``μ_y = μ + Δμ(y)`` and
    ``log σ_y = log σ + Δlog σ(y)``, zero-initialised so training starts at the unconditional
    prior, and both directions then take the condition as second argument ``cond``:

    * ``num_classes = K > 0`` (Kingma & Dhariwal 2018 §5): ``(Δμ, Δlog σ) = E[y]``, a learned
      table (a linear map of the one-hot label); ``cond`` is the labels ``[B]`` (int64 in
      ``0..K−1``).
    * ``cond_dim = E > 0`` (``conditional``): ``(Δμ, Δlog σ) = W e`` with ``W`` a
      :class:`~glowapp.flows.nets.ZeroLinear` of the label embedding ``e`` that the flow shares
      between all its layers; ``cond`` is a :class:`~glowapp.flows.conditioning.Condition`, and
      a guided one mixes the offsets, ``(1 + w)·W c − w·W ∅``.
    """

    def __init__(self, num_channels: int, num_classes: int = 0, cond_dim: int = 0) -> None:
        super().__init__()
        if num_classes < 0 or cond_dim < 0:
            raise ValueError(
                f"num_classes and cond_dim must be >= 0 (0 = unconditional), got "
                f"num_classes={num_classes}, cond_dim={cond_dim}"
            )
        if num_classes and cond_dim:
            raise ValueError(
                "a top prior is conditioned on labels (num_classes > 0) or on label embeddings "
                f"(cond_dim > 0), not both; got num_classes={num_classes}, cond_dim={cond_dim}"
            )
        self.num_classes = num_classes
        self.cond_dim = cond_dim
        self.conditional = cond_dim > 0
        self.mean = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.log_std = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.embedding = nn.Embedding(num_classes, 2 * num_channels) if num_classes else None
        if self.embedding is not None:
            nn.init.zeros_(self.embedding.weight)
        self.cond_proj = ZeroLinear(cond_dim, 2 * num_channels) if cond_dim else None

    def mean_log_std(
        self, cond: Tensor | Condition | None = None, batch: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(μ, log σ)``: ``[1, C, 1, 1]`` each, or ``[B, C, 1, 1]`` for a conditional prior.

        ``cond``: labels ``[B]`` (``num_classes`` mode), a Condition (``cond_dim`` mode), or
        None (unconditional); ``batch``, if given, is checked against a Condition's.
        """
        offset = self._offset(cond, batch)
        if offset is None:
            return self.mean, self.log_std
        mean, log_std = offset.chunk(2, dim=1)
        return self.mean + mean, self.log_std + log_std

    def _offset(self, cond: Tensor | Condition | None, batch: int | None) -> Tensor | None:
        """``(Δμ, Δlog σ)`` ``[B, 2C, 1, 1]``, or None for an unconditional prior."""
        if self.cond_proj is not None or isinstance(cond, Condition):
            if isinstance(cond, Tensor):
                raise ValueError(
                    f"this top prior is conditioned on label embeddings (cond_dim={self.cond_dim})"
                    ": pass a Condition, not labels"
                )
            check_condition(cond, self.cond_dim, "this top prior", batch)
            assert cond is not None and self.cond_proj is not None
            return at_least_float32(cond.label_params(self.cond_proj))[:, :, None, None]
        if self.embedding is None:
            if cond is not None:
                raise ValueError(
                    "labels were given to an unconditional prior (num_classes=0); build the model "
                    "with num_classes > 0 to condition on labels, or pass labels=None"
                )
            return None
        if cond is None:
            raise ValueError(
                f"the model is class-conditional (num_classes={self.num_classes}): pass the "
                "images' labels (y=...)"
            )
        return self.embedding(cond)[:, :, None, None]

    def _logdet(self, x: Tensor, log_std: Tensor) -> Tensor:
        return x.shape[2] * x.shape[3] * log_std.flatten(1).sum(dim=1).expand(x.shape[0])

    def forward(self, x: Tensor, cond: Tensor | Condition | None = None) -> tuple[Tensor, Tensor]:
        mean, log_std = self.mean_log_std(cond, x.shape[0])
        eps = (at_least_float32(x) - mean) * (-log_std).exp()
        return eps, -self._logdet(x, log_std)

    def inverse(self, eps: Tensor, cond: Tensor | Condition | None = None) -> tuple[Tensor, Tensor]:
        mean, log_std = self.mean_log_std(cond, eps.shape[0])
        h = mean + log_std.exp() * at_least_float32(eps)
        return h, self._logdet(eps, log_std)
