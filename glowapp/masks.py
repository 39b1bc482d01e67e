"""Inpainting masks: built-in shapes (:func:`make_mask`), or a mask image file (white = hidden;
:func:`resolve_mask`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from glowapp.images import ImageLoadError, mask_from_image

MASK_KINDS = ("center", "left", "right", "top", "bottom", "random")
"""Built-in inpainting masks (see :func:`make_mask`)."""


def make_mask(
    kind: str, size: tuple[int, int], fraction: float | None = None, seed: int = 0
) -> Tensor:
    """A bool mask ``[H, W]`` for ``size = (H, W)``: ``True`` marks a hidden pixel.

    ``kind``: ``center`` (a centred box covering ``fraction`` of the area, default ¼: half the
    height and width), ``left``/``right``/``top``/``bottom`` (that ``fraction`` of the columns or
    rows, default ½), ``random`` (each pixel hidden with probability ``fraction``, default ½,
    drawn from ``seed``).

    Raises:
        ValueError: an unknown ``kind``, or ``fraction`` outside ``(0, 1]``.
    """
    height, width = size
    if kind not in MASK_KINDS:
        raise ValueError(f"mask must be one of {', '.join(MASK_KINDS)}, got {kind!r}")
    if fraction is None:
        fraction = 0.25 if kind == "center" else 0.5
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"mask fraction must be in (0, 1], got {fraction}")
    mask = torch.zeros(height, width, dtype=torch.bool)
    rows, cols = round(height * fraction), round(width * fraction)
    if kind == "center":
        side = math.sqrt(fraction)
        h, w = round(height * side), round(width * side)
        top, left = (height - h) // 2, (width - w) // 2
        mask[top : top + h, left : left + w] = True
    elif kind == "left":
        mask[:, :cols] = True
    elif kind == "right":
        mask[:, width - cols :] = True
    elif kind == "top":
        mask[:rows] = True
    elif kind == "bottom":
        mask[height - rows :] = True
    else:
        generator = torch.Generator().manual_seed(seed)
        mask = torch.rand(height, width, generator=generator) < fraction
    return mask


def resolve_mask(
    spec: str, size: tuple[int, int], fraction: float | None = None, seed: int = 0
) -> Tensor:
    """:func:`make_mask` for a name in :data:`MASK_KINDS`, else the mask image at path ``spec``
    (white = hidden; see :func:`glowapp.images.mask_from_image`).

    Raises:
        ValueError: ``spec`` is neither a mask name nor a readable image (the message says
            both), or what :func:`make_mask` raises.
    """
    if spec in MASK_KINDS:
        return make_mask(spec, size, fraction, seed)
    try:
        return mask_from_image(spec, size)
    except ImageLoadError as err:
        raise ValueError(
            f"mask must be one of {', '.join(MASK_KINDS)} or a mask image (white = hidden); {err}"
        ) from None
