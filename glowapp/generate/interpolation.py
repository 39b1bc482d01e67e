"""Latent interpolation between pairs of images (linear or spherical paths)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from glowapp.generate.common import in_eval_mode

if TYPE_CHECKING:
    from glowapp.module import GlowModule

INTERPOLATION_MODES = ("linear", "spherical")
"""Ways :func:`interpolate` mixes two latents."""


def mix_latents(a: Tensor, b: Tensor, t: Tensor, mode: str) -> Tensor:
    """Interpolate rows of ``a, b`` ``[P, D]`` at weights ``t`` ``[S]`` → ``[P, S, D]``.

    ``linear``: ``(1 − t) a + t b``. ``spherical`` (slerp): with ``ω`` the angle between ``a``
    and ``b``, ``sin((1 − t) ω)/sin ω · a + sin(t ω)/sin ω · b`` (linear where ``ω ≈ 0``).
    Both give exactly ``a`` at ``t = 0`` and ``b`` at ``t = 1``.
    """
    t = t.to(a)[None, :, None]
    linear = (1 - t) * a[:, None] + t * b[:, None]
    if mode == "linear":
        return linear
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1.0, 1.0)
    omega = torch.acos(cos)[:, None, None]
    sin_omega = torch.sin(omega)
    degenerate = sin_omega.abs() < 1e-6
    safe = torch.where(degenerate, torch.ones_like(sin_omega), sin_omega)
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / safe
    return torch.where(degenerate, linear, spherical)


@in_eval_mode
@torch.no_grad()
def interpolate(
    module: GlowModule, images_a: Tensor, images_b: Tensor, steps: int = 8, mode: str = "linear"
) -> Tensor:
    """Images along the latent path from each ``images_a[i]`` to ``images_b[i]``.

    Both batches ``[P, C, H, W]`` are encoded at their bin centres; every level's latent is
    interpolated on its flattened vector (``linear`` or ``spherical``), and the path decoded.
    Returns ``[P, steps, C, H, W]`` in ``[0, 1]``; the first and last columns are the decoded
    endpoints, which reproduce the inputs exactly up to the model's quantisation.

    Class-conditional models: every image is encoded and decoded with the same label (class 0).
    Only the top latent depends on it, as ``ε_L = (h_L − μ(y)) / σ(y)`` of the label-free top
    activation ``h_L``, so the endpoints are exact and a linear path in ``ε_L`` is the linear
    path in ``h_L`` whichever label is used.

    Raises:
        ValueError: an unknown ``mode``, ``steps`` < 2, or batches of different shapes.
    """
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {', '.join(INTERPOLATION_MODES)}, got {mode!r}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (the two endpoints), got {steps}")
    if images_a.shape != images_b.shape:
        raise ValueError(
            f"image batches differ in shape: {tuple(images_a.shape)} vs {tuple(images_b.shape)}"
        )
    t = torch.linspace(0.0, 1.0, steps)
    n = images_a.shape[0]
    same_label = torch.zeros(n, dtype=torch.long) if module.flow.num_classes else None
    latents = []
    ends = (module.encode(images_a, labels=same_label), module.encode(images_b, labels=same_label))
    for za, zb in zip(*ends, strict=True):
        mixed = mix_latents(za.flatten(1), zb.flatten(1), t, mode)  # [P, S, D]
        latents.append(mixed.reshape(-1, *za.shape[1:]))
    path_labels = None if same_label is None else same_label.repeat_interleave(steps)
    images = module.decode(latents, path_labels)
    return images.reshape(-1, steps, *images.shape[1:])
