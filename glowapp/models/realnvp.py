"""RealNVP (Dinh et al. 2017): checkerboard and channel couplings with factor-out."""

from __future__ import annotations

from collections.abc import Sequence

from glowapp.flows.base import Bijection, ElementwiseTransform, FlowSequential
from glowapp.flows.batchnorm import BatchNormFlow
from glowapp.flows.coupling import ChannelCoupling, CheckerboardCoupling, make_transform
from glowapp.flows.squeeze import Squeeze
from glowapp.models.multiscale import MultiScaleFlow


class RealNVP(MultiScaleFlow):
    """RealNVP's multi-scale architecture.

    Each of the first ``scales − 1`` scales: 3 checkerboard couplings (alternating parity) on
    ``C×H×W``, squeeze to ``4C×H/2×W/2``, 3 channel couplings (alternating halves), factor out
    half → ``2C×H/2×W/2``. The final scale: 4 checkerboard couplings. Conditioners are ResNets
    with ``blocks`` residual blocks of width ``hidden``. ``H`` and ``W`` must be multiples of
    ``2**(scales − 1)``.

    Args:
        in_channels: image channels.
        scales: number of scales (≥ 1).
        hidden: conditioner width.
        blocks: residual blocks per conditioner.
        coupling: ``"affine"`` (as in the paper), ``"additive"`` or ``"spline"``.
        batch_norm: insert a :class:`BatchNormFlow` after every coupling (as in the paper).
        image_size: ``H`` or ``(H, W)``; learnt from the first batch if omitted.
        spline_bins, spline_bound: the spline coupling's ``K`` and ``B`` (see :class:`Glow`).
        num_classes: > 0 for a class-conditional model (see :class:`MultiScaleFlow`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        scales: int = 3,
        hidden: int = 64,
        blocks: int = 4,
        coupling: str = "affine",
        batch_norm: bool = False,
        image_size: int | Sequence[int] | None = None,
        spline_bins: int = 8,
        spline_bound: float = 3.0,
        num_classes: int = 0,
    ) -> None:
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")

        def transform() -> ElementwiseTransform:  # a fresh one per coupling
            return make_transform(coupling, spline_bins, spline_bound)

        def with_norm(layer: Bijection, channels: int) -> list[Bijection]:
            return [layer, BatchNormFlow(channels)] if batch_norm else [layer]

        def checkerboard(c: int, n: int) -> list[Bijection]:
            return [
                m
                for k in range(n)
                for m in with_norm(
                    CheckerboardCoupling(c, hidden, transform(), parity=k, blocks=blocks), c
                )
            ]

        levels: list[Bijection] = []
        level_channels: list[int] = []
        c = in_channels
        for _ in range(scales - 1):
            channel = [
                m
                for k in range(3)
                for m in with_norm(
                    ChannelCoupling(4 * c, hidden, transform(), swap=k % 2 == 1, blocks=blocks),
                    4 * c,
                )
            ]
            levels.append(FlowSequential([*checkerboard(c, 3), Squeeze(), *channel]))
            level_channels.append(4 * c)
            c = 2 * c
        levels.append(FlowSequential(checkerboard(c, 4)))
        level_channels.append(c)
        squeezes = [1] * (scales - 1) + [0]
        super().__init__(
            in_channels, levels, level_channels, squeezes, image_size, num_classes=num_classes
        )
