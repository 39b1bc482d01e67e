"""Scoring: bits/dim of images under the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from glowapp.flows.preprocess import bits_per_dim
from glowapp.generate.common import in_eval_mode, seeded_generator

if TYPE_CHECKING:
    from glowapp.image_flow import ImageFlow


@in_eval_mode
@torch.no_grad()
def score(model: ImageFlow, images: Tensor, noise_samples: int = 0, seed: int = 0) -> Tensor:
    """Bits/dim ``[B]`` of images (the discrete negative log-likelihood per sub-pixel).

    ``noise_samples=0`` (default) evaluates at the bin centres: deterministic, and what ranks
    single images. ``noise_samples=K > 0`` averages the papers' uniformly dequantised estimate
    over ``K`` draws from ``seed`` (each draw an upper bound on the discrete bits/dim).

    Raises:
        ValueError: ``noise_samples`` < 0, or images not ``[B, *model.image_shape]``.
    """
    if noise_samples < 0:
        raise ValueError(f"noise samples must be >= 0 (0: the bin centres), got {noise_samples}")
    if noise_samples == 0:
        return model.bits_per_dim(images, noise=False)
    generator = seeded_generator(seed, model.device)
    draws = [
        model.bits_per_dim(images, noise=True, generator=generator) for _ in range(noise_samples)
    ]
    return torch.stack(draws).mean(dim=0)


def log_prob_to_bits_per_dim(model: ImageFlow, log_prob: Tensor) -> Tensor:
    """Turn ``log p_Y(y)`` (nats, e.g. :attr:`InpaintResult.log_prob`) into bits/dim."""
    return bits_per_dim(
        log_prob, torch.zeros_like(log_prob), model.num_dims, model.preprocess.n_bits
    )
