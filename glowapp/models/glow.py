"""Glow (Kingma & Dhariwal 2018): multi-scale flow of ActNorm → 1×1 conv → coupling steps."""

from __future__ import annotations

from collections.abc import Sequence

from glowapp.flows.actnorm import ActNorm
from glowapp.flows.base import Bijection, FlowSequential
from glowapp.flows.conv1x1 import ChannelPermutation, InvConv1x1, InvConv1x1LU
from glowapp.flows.coupling import ChannelCoupling, make_transform
from glowapp.flows.emerging import EmergingConv2d
from glowapp.flows.squeeze import Squeeze
from glowapp.models.multiscale import MultiScaleFlow

PERMUTATIONS = ("lu", "conv", "shuffle", "reverse", "emerging")


def channel_mixer(num_channels: int, permutation: str) -> Bijection:
    """The step's channel mixing: LU 1×1 conv, plain 1×1 conv, random shuffle or reversal, or
    ``"emerging"``: a 3×3 :class:`EmergingConv2d` then an LU 1×1 conv, as Hoogeboom et al. (2019)
    placed it in Glow (its inverse is sequential: sampling is slower, see its docstring)."""
    if permutation == "emerging":
        return FlowSequential([EmergingConv2d(num_channels), InvConv1x1LU(num_channels)])
    if permutation == "lu":
        return InvConv1x1LU(num_channels)
    if permutation == "conv":
        return InvConv1x1(num_channels)
    if permutation in ("shuffle", "reverse"):
        return ChannelPermutation(num_channels, permutation)
    raise ValueError(f"permutation must be one of {PERMUTATIONS}, got {permutation!r}")


class FlowStep(FlowSequential):
    """One Glow step: ``ActNorm → channel mixing → channel coupling`` (log-dets add).

    ``coupling``, ``spline_bins`` and ``spline_bound`` go to :func:`make_transform`.
    """

    def __init__(
        self,
        num_channels: int,
        hidden: int,
        coupling: str,
        permutation: str,
        spline_bins: int = 8,
        spline_bound: float = 3.0,
    ) -> None:
        transform = make_transform(coupling, spline_bins, spline_bound)
        super().__init__(
            [
                ActNorm(num_channels),
                channel_mixer(num_channels, permutation),
                ChannelCoupling(num_channels, hidden, transform=transform),
            ]
        )


class Glow(MultiScaleFlow):
    """Glow: ``levels`` × [squeeze, ``steps`` × FlowStep, split (all but the last level)].

    Shapes for a ``C×H×W`` input: level ``i`` (from 1) works on ``C·2^(i+1)`` channels at
    ``H/2^i × W/2^i`` and factors out half of them, so ``H`` and ``W`` must be multiples of
    ``2**levels`` (28×28 Fashion-MNIST: ``levels ≤ 2``).

    Args:
        in_channels: image channels (1 grey, 3 RGB).
        levels: number of scales ``L``.
        steps: flow steps per level ``K``.
        hidden: width of the coupling networks.
        coupling: ``"affine"`` (bounded scale), ``"additive"`` or ``"spline"`` (rational-quadratic,
            Durkan et al. 2019).
        permutation: ``"lu"`` (LU 1×1 conv), ``"conv"`` (plain 1×1 conv), ``"shuffle"``,
            ``"reverse"``, or ``"emerging"`` (a 3×3 emerging convolution, then the LU 1×1 conv, as
            Hoogeboom et al. 2019 placed it; its inverse is sequential, so sampling is slower).
        image_size: ``H`` (square) or ``(H, W)``; learnt from the first batch if omitted.
        spline_bins: bins ``K`` of the spline coupling.
        spline_bound: the spline acts on ``[−B, B]`` (identity outside); this is ``B``.
        num_classes: > 0 for a class-conditional model (label-dependent top prior and a
            classifier head, see :class:`MultiScaleFlow`); 0 = unconditional.
    """

    def __init__(
        self,
        in_channels: int = 3,
        levels: int = 3,
        steps: int = 32,
        hidden: int = 512,
        coupling: str = "affine",
        permutation: str = "lu",
        image_size: int | Sequence[int] | None = None,
        spline_bins: int = 8,
        spline_bound: float = 3.0,
        num_classes: int = 0,
    ) -> None:
        if levels < 1 or steps < 1:
            raise ValueError(f"levels and steps must be >= 1, got levels={levels}, steps={steps}")
        blocks: list[Bijection] = []
        level_channels: list[int] = []
        c = in_channels
        for i in range(levels):
            c = 4 * c  # squeeze: (B, 4C, H/2, W/2)
            blocks.append(
                FlowSequential(
                    [
                        Squeeze(),
                        *(
                            FlowStep(c, hidden, coupling, permutation, spline_bins, spline_bound)
                            for _ in range(steps)
                        ),
                    ]
                )
            )
            level_channels.append(c)
            if i < levels - 1:
                c = c // 2  # split: half the channels leave as this level's latent
        super().__init__(
            in_channels,
            blocks,
            level_channels,
            [1] * levels,
            image_size,
            num_classes,
        )
