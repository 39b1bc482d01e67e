"""RealNVP (Dinh et al. 2017): checkerboard and channel couplings with factor-out."""

from __future__ import annotations

from collections.abc import Sequence

from glowapp.flows.base import Bijection, FlowSequential
from glowapp.flows.batchnorm import BatchNormFlow
from glowapp.flows.coupling import ChannelCoupling, CheckerboardCoupling
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
        coupling: ``"affine"`` (as in the paper) or ``"additive"``.
        batch_norm: insert a :class:`BatchNormFlow` after every coupling (as in the paper).
        image_size: ``H`` or ``(H, W)``; learnt from the first batch if omitted.
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
    ) -> None:
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")

        def with_norm(layer: Bijection, channels: int) -> list[Bijection]:
            return [layer, BatchNormFlow(channels)] if batch_norm else [layer]

        def checkerboard(c: int, n: int) -> list[Bijection]:
            return [
                m
                for k in range(n)
                for m in with_norm(CheckerboardCoupling(c, hidden, coupling, parity=k, blocks=blocks), c)
            ]

        levels: list[Bijection] = []
        level_channels: list[int] = []
        c = in_channels
        for _ in range(scales - 1):
            channel = [
                m
                for k in range(3)
                for m in with_norm(ChannelCoupling(4 * c, hidden, coupling, swap=k % 2 == 1, blocks=blocks), 4 * c)
            ]
            levels.append(FlowSequential([*checkerboard(c, 3), Squeeze(), *channel]))
            level_channels.append(4 * c)
            c = 2 * c
        levels.append(FlowSequential(checkerboard(c, 4)))
        level_channels.append(c)
        super().__init__(in_channels, levels, level_channels, [1] * (scales - 1) + [0], image_size)
