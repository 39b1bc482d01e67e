"""Helpers for tests of the model assemblies (:mod:`glowapp.models`): inputs, preparing a model
away from its identity initialisation, and flattening its latents."""

from __future__ import annotations

import math

import torch
from helpers.bijections import perturb
from torch import Tensor

from glowapp.flows import ActNorm, BatchNormFlow, InvConv1x1, InvConv1x1LU
from glowapp.models import MultiScaleFlow


def images(
    n: int, channels: int, h: int, w: int | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Center-shifted dequantised images ``[n, channels, h, w]`` in ``[-½, ½)``, the flows' usual
    input."""
    return torch.rand(n, channels, h, w or h, dtype=dtype) - 0.5


def prepare(
    model: MultiScaleFlow, x: Tensor, scale: float = 0.05, labels: Tensor | None = None
) -> MultiScaleFlow:
    """Perturb, data-initialise ActNorms / warm BatchNorm statistics on ``x`` (with ``labels``
    for a class-conditional model), perturb those, eval.

    The 1×1 convolutions start as random rotations (already non-trivial) and get a smaller
    perturbation, so their condition number stays near 1 as in a trained model.
    """
    with torch.no_grad():
        for module in model.modules():
            small = isinstance(module, InvConv1x1 | InvConv1x1LU)
            for p in module.parameters(recurse=False):
                p.add_((0.2 * scale if small else scale) * torch.randn_like(p))
    norms = [m for m in model.modules() if isinstance(m, ActNorm | BatchNormFlow)]
    model.train()
    with torch.no_grad():
        for _ in range(5 if any(isinstance(m, BatchNormFlow) for m in norms) else 1):
            model.encode(x + 0.05 * torch.randn_like(x), labels)
    for m in norms:
        perturb(m, scale)
    return model.eval()


def flat_latents(latents: list[Tensor]) -> Tensor:
    """``[ε_1, …, ε_L] -> [B, D]``."""
    return torch.cat([eps.flatten(1) for eps in latents], dim=1)


def unflatten(model: MultiScaleFlow, z: Tensor) -> list[Tensor]:
    """Inverse of :func:`flat_latents` for ``model``'s latent shapes: ``[B, D] -> [ε_1, …, ε_L]``."""
    out, i = [], 0
    for shape in model.latent_shapes():
        d = math.prod(shape)
        out.append(z[:, i : i + d].reshape(-1, *shape))
        i += d
    return out
