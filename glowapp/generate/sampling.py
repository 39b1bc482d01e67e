"""Sampling at temperatures: ``decode(T · ε)`` with ``ε ~ N(0, I)`` drawn once from a seed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from glowapp.generate.common import in_eval_mode, seeded_generator

if TYPE_CHECKING:
    from glowapp.module import GlowModule

Temperature = float | Sequence[float]
"""One temperature for every level, or one per level (finest first)."""


def _per_level(temperature: Temperature, levels: int) -> list[float]:
    """One temperature per level; each finite and >= 0 (0 decodes the prior's mode)."""
    if isinstance(temperature, int | float):
        temperatures = [float(temperature)] * levels
    else:
        temperatures = [float(t) for t in temperature]
        if len(temperatures) != levels:
            raise ValueError(
                f"expected one temperature per level ({levels}), got {len(temperatures)}"
            )
    for t in temperatures:
        if not (math.isfinite(t) and t >= 0.0):
            raise ValueError(f"temperature must be a finite number >= 0, got {t:g}")
    return temperatures


def draw_noise(module: GlowModule, n: int, seed: int = 0) -> list[Tensor]:
    """Standard-normal latents ``[ε_1, …, ε_L]`` for ``n`` samples, drawn on the CPU from ``seed``.

    The same seed gives the same noise on any device, and the same images as
    ``module.sample(n, T, torch.Generator().manual_seed(seed))``.

    Raises:
        ValueError: ``n`` < 1, or a seed outside torch's range.
    """
    if n < 1:
        raise ValueError(f"the number of samples must be at least 1, got {n}")
    return module.flow.sample_latents(n, 1.0, seeded_generator(seed))


def class_labels(module: GlowModule, labels: Sequence[int] | None, n: int) -> Tensor | None:
    """The labels ``[n]`` of ``n`` samples: ``labels`` repeated cyclically (sample ``i`` gets
    ``labels[i % len(labels)]``).

    Without ``labels``: None for an unconditional model; every class in turn (``0, 1, …, K−1,
    0, …``) for a class-conditional one.

    Raises:
        ValueError: labels for an unconditional model, or a label outside ``0..K−1``.
    """
    num_classes = module.flow.num_classes
    if labels is None:
        return torch.arange(n) % num_classes if num_classes else None
    labels = list(labels)
    if not num_classes:
        raise ValueError(
            "this checkpoint is unconditional (trained with num_classes=0), so it cannot sample "
            "a class; leave out the label, or train with --model.flow.num_classes"
        )
    if not labels:
        raise ValueError("the list of labels is empty; leave it out to cycle through every class")
    bad = [y for y in labels if not 0 <= y < num_classes]
    if bad:
        raise ValueError(
            f"label {bad[0]} is out of range: this model has {num_classes} classes, "
            f"0..{num_classes - 1}"
        )
    return torch.tensor(labels)[torch.arange(n) % len(labels)]


@in_eval_mode
@torch.no_grad()
def sample_with_noise(
    module: GlowModule,
    noise: Sequence[Tensor],
    temperatures: Sequence[Temperature],
    labels: Tensor | None = None,
) -> Tensor:
    """Decode fixed noise at each temperature: ``[len(temperatures), n, C, H, W]`` in ``[0, 1]``.

    Each temperature is a float (every prior's std scaled by it) or one float per level; the
    same ``ε`` is used for every temperature, so rows differ only by temperature. ``labels``
    ``[n]``: the classes of a class-conditional model's samples (see :func:`class_labels`).

    Raises:
        ValueError: no temperature, a negative or non-finite one, or a per-level temperature
            with the wrong number of levels.
    """
    if not temperatures:
        raise ValueError("give at least one temperature")
    scales = [_per_level(temperature, len(noise)) for temperature in temperatures]
    device = module.device
    rows = []
    for levels in scales:
        latents = [t * eps.to(device) for t, eps in zip(levels, noise, strict=True)]
        rows.append(module.decode(latents, labels))
    return torch.stack(rows)


def sample_grid(
    module: GlowModule,
    temperatures: Sequence[Temperature],
    n: int,
    seed: int = 0,
    labels: Sequence[int] | None = None,
) -> Tensor:
    """``n`` samples at each temperature from one fixed noise draw: ``[T, n, C, H, W]``.

    See :func:`draw_noise` and :func:`sample_with_noise`; :func:`tile` turns it into one image
    with a row block per temperature. ``labels``: classes of a class-conditional model, repeated
    cyclically over the ``n`` samples (default: every class in turn; see :func:`class_labels`).
    """
    noise = draw_noise(module, n, seed)
    return sample_with_noise(module, noise, temperatures, class_labels(module, labels, n))
