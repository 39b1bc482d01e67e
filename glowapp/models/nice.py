"""NICE (Dinh et al. 2014): additive couplings and a final diagonal scaling."""

from __future__ import annotations

from collections.abc import Sequence

from glowapp.flows.base import FlowSequential
from glowapp.flows.coupling import CheckerboardCoupling
from glowapp.flows.scaling import DiagonalScaling
from glowapp.models.multiscale import MultiScaleFlow, as_hw


class NICE(MultiScaleFlow):
    """NICE-style single-scale flow on images.

    ``couplings`` additive checkerboard couplings with alternating parity (the paper's
    alternating partition, with convolutional conditioners instead of MLPs), then a per-dimension
    :class:`DiagonalScaling` — the only layer that changes volume. One latent, shaped like the
    image. Unlike the paper's logistic prior we keep the standard normal (learned mean/std) prior
    used by the other assemblies, so all three share one API.

    Args:
        in_channels: image channels.
        image_size: ``H`` or ``(H, W)`` — required, because the scaling has one factor per dimension.
        couplings: number of additive couplings (the paper used 4).
        hidden: conditioner width.
        blocks: residual blocks per conditioner (0: Glow's 3-layer conv net).
        num_classes: > 0 for a class-conditional model (see :class:`MultiScaleFlow`).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | Sequence[int] = 28,
        couplings: int = 4,
        hidden: int = 128,
        blocks: int = 0,
        num_classes: int = 0,
    ) -> None:
        h, w = as_hw(image_size)
        if h <= 0 or w <= 0:
            raise ValueError(f"NICE needs a positive image_size, got {image_size!r}")
        if couplings < 1:
            raise ValueError(f"couplings must be >= 1, got {couplings}")
        layers = [
            CheckerboardCoupling(in_channels, hidden, "additive", parity=k, blocks=blocks)
            for k in range(couplings)
        ]
        flow = FlowSequential([*layers, DiagonalScaling((in_channels, h, w))])
        super().__init__(in_channels, [flow], [in_channels], [0], (h, w), num_classes=num_classes)
