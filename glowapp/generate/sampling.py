"""Sampling at temperatures: ``decode(T · ε)`` with ``ε ~ N(0, I)`` drawn once from a seed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from glowapp.generate.common import in_eval_mode, seeded_generator

if TYPE_CHECKING:
    from glowapp.image_flow import ImageFlow

DECODE_BATCH = 500
"""Samples decoded at a time (bounds memory, in particular the denoising step's backward pass)."""

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


def draw_noise(model: ImageFlow, n: int, seed: int = 0) -> list[Tensor]:
    """Standard-normal latents ``[ε_1, …, ε_L]`` for ``n`` samples, drawn on the CPU from ``seed``.

    The same seed gives the same noise on any device, and the same images as
    ``model.sample(n, T, torch.Generator().manual_seed(seed))``.

    Raises:
        ValueError: ``n`` < 1, or a seed outside torch's range.
    """
    if n < 1:
        raise ValueError(f"the number of samples must be at least 1, got {n}")
    return model.flow.sample_latents(n, 1.0, seeded_generator(seed))


def class_labels(model: ImageFlow, labels: Sequence[int] | None, n: int) -> Tensor | None:
    """The labels ``[n]`` of ``n`` samples: ``labels`` repeated cyclically (sample ``i`` gets
    ``labels[i % len(labels)]``).

    Without ``labels``: None for an unconditional model; every class in turn (``0, 1, …, K−1,
    0, …``) for a class-conditional one.

    Raises:
        ValueError: labels for an unconditional model, or a label outside ``0..K−1``.
    """
    num_classes = model.num_classes
    if labels is None:
        return torch.arange(n) % num_classes if num_classes else None
    labels = list(labels)
    if not num_classes:
        raise ValueError(
            "this model is unconditional, so it cannot sample a class; leave out the label, or "
            "use a class-conditional model (e.g. --ckpt fashion-mnist-conditional)"
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
    model: ImageFlow,
    noise: Sequence[Tensor],
    temperatures: Sequence[Temperature],
    labels: Tensor | None = None,
    guidance: float | None = None,
    denoise: bool | None = None,
) -> Tensor:
    """Decode fixed noise at each temperature: ``[len(temperatures), n, C, H, W]`` in ``[0, 1]``.

    Each temperature is a float (every prior's std scaled by it) or one float per level; the
    same ``ε`` is used for every temperature, so rows differ only by temperature. ``labels``
    ``[n]``: the classes of a class-conditional model's samples (see :func:`class_labels`).
    ``guidance`` (classifier-free guidance weight) and ``denoise`` (the Tweedie step) default
    to the model's own settings (:attr:`ImageFlow.sampling`).

    Raises:
        ValueError: no temperature, a negative or non-finite one, or a per-level temperature
            with the wrong number of levels.
    """
    if not temperatures:
        raise ValueError("give at least one temperature")
    scales = [_per_level(temperature, len(noise)) for temperature in temperatures]
    device = model.device
    n = noise[0].shape[0]
    rows = []
    for levels in scales:
        chunks = []
        for start in range(0, n, DECODE_BATCH):
            part = slice(start, start + DECODE_BATCH)
            latents = [t * eps[part].to(device) for t, eps in zip(levels, noise, strict=True)]
            part_labels = None if labels is None else labels[part]
            chunks.append(model.generate(latents, part_labels, guidance, denoise))
        rows.append(torch.cat(chunks))
    return torch.stack(rows)


def sample_grid(
    model: ImageFlow,
    temperatures: Sequence[Temperature],
    n: int,
    seed: int = 0,
    labels: Sequence[int] | None = None,
    guidance: float | None = None,
    denoise: bool | None = None,
) -> Tensor:
    """``n`` samples at each temperature from one fixed noise draw: ``[T, n, C, H, W]``.

    See :func:`draw_noise` and :func:`sample_with_noise`; :func:`glowapp.images.tile` turns it
    into one image with a row block per temperature. ``labels``: classes of a class-conditional
    model, repeated cyclically over the ``n`` samples (default: every class in turn; see
    :func:`class_labels`).
    """
    noise = draw_noise(model, n, seed)
    classes = class_labels(model, labels, n)
    return sample_with_noise(model, noise, temperatures, classes, guidance, denoise)
