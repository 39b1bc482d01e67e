"""Latent interpolation between pairs of images (linear or spherical paths)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from glowapp.generate.common import in_eval_mode, shared_label

if TYPE_CHECKING:
    from glowapp.image_flow import ImageFlow

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
    model: ImageFlow,
    images_a: Tensor,
    images_b: Tensor,
    steps: int = 8,
    mode: str = "linear",
    denoise: bool | None = None,
) -> Tensor:
    """Images along the latent path from each ``images_a[i]`` to ``images_b[i]``.

    Both batches ``[P, C, H, W]`` are encoded at their bin centres; every level's latent is
    interpolated on its flattened vector (``linear`` or ``spherical``), and the path decoded.
    Returns ``[P, steps, C, H, W]`` in ``[0, 1]``; the first and last columns are the decoded
    endpoints, which reproduce the inputs exactly up to the model's quantisation (models trained
    with Gaussian noise denoise every decoded image, endpoints included, unless
    ``denoise=False``: the default is the model's own, :attr:`ImageFlow.sampling`).

    Class-conditional models: every image is encoded and decoded with the same label
    (:func:`~glowapp.generate.common.shared_label`: "no label" for models trained with label
    dropout, else class 0), so the endpoints are exact.

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
    same_label = shared_label(model, n)
    latents = []
    ends = (model.encode(images_a, labels=same_label), model.encode(images_b, labels=same_label))
    for za, zb in zip(*ends, strict=True):
        mixed = mix_latents(za.flatten(1), zb.flatten(1), t, mode)  # [P, S, D]
        latents.append(mixed.reshape(-1, *za.shape[1:]))
    path_labels = None if same_label is None else same_label.repeat_interleave(steps)
    images = model.decode(latents, path_labels, guidance=0.0, denoise=denoise)
    return images.reshape(-1, steps, *images.shape[1:])
