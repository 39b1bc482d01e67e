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

    ``coupling``, ``spline_bins`` and ``spline_bound`` go to :func:`make_transform`;
    ``cond_dim`` and ``attention_heads`` to the :class:`ChannelCoupling` (its network takes
    label embeddings of that size / has self-attention with that many heads; 0 = none).
    """

    def __init__(
        self,
        num_channels: int,
        hidden: int,
        coupling: str,
        permutation: str,
        spline_bins: int = 8,
        spline_bound: float = 3.0,
        cond_dim: int = 0,
        attention_heads: int = 0,
    ) -> None:
        transform = make_transform(coupling, spline_bins, spline_bound)
        super().__init__(
            [
                ActNorm(num_channels),
                channel_mixer(num_channels, permutation),
                ChannelCoupling(
                    num_channels,
                    hidden,
                    transform=transform,
                    cond_dim=cond_dim,
                    attention_heads=attention_heads,
                ),
            ]
        )


class Glow(MultiScaleFlow):
    """Glow: ``levels`` × [squeeze, ``steps`` × FlowStep, split (all but the last level)].

    Shapes for a ``C×H×W`` input: level ``i`` (from 1) works on ``C·2^(i+1)`` channels at
    ``H/2^i × W/2^i`` and factors out half of them, so ``H`` and ``W`` must be multiples of
    ``2**levels`` (28×28 Fashion-MNIST: ``levels ≤ 2``).

    Class conditioning (``num_classes = K > 0``), two ways:

    * ``label_embedding_dim = 0``, as in the paper: only the top prior depends on the label,
      ``N(μ + Δμ_y, (σ·exp Δlog σ_y)²)``, and a linear head on the top activation classifies.
    * ``label_embedding_dim = E > 0``: a learned embedding ``e_y ∈ R^E`` of the label (with an
      extra row for "no label", ``y = K``) reaches the whole flow. Every coupling network adds
      ``W e_y`` per channel to its first hidden layer, every split prior adds ``W' e_y`` to its
      ``(μ, log σ)``, and the top prior adds ``W'' e_y`` to its own; each ``W`` starts at zero,
      so a fresh model is label-independent. There is no classifier head (the top activation
      depends on the label); ``log_prob_per_class`` gives the Bayes classifier. Training with
      label dropout (labels replaced by
      ``K`` at random) makes the same flow an unconditional model too, and sampling can then use
      classifier-free guidance: every layer runs its inverse with the parameters
      ``(1 + w)·θ(e_y) − w·θ(e_∅)`` (``sample(..., guidance=w)``). Costs ``E·hidden``
      parameters per step (and ``E·C`` per prior); with ``E = 32`` a training step of a
      ``levels=2, steps=16, hidden=96`` spline Glow on 1×28×28 (batch 32, one CPU thread) took
      the same CPU time as without (within 1 %).

    Self-attention (``attention_heads > 0``, as Flow++ put it in its couplings): every coupling
    network gets a pre-norm multi-head self-attention block over the ``H·W`` positions between
    its two hidden layers (:class:`~glowapp.flows.attention.SelfAttention2d`; fixed sinusoidal
    position codes; zero-initialised output, so it starts as the identity). Attention costs
    ``O((H·W)²)`` per layer, so the finest level dominates: on the model above with 4 heads, a
    training step took 2.4× the CPU time with attention at both levels (196 and 49 positions)
    and 1.25× with ``attention_levels=1`` (the 7×7 level only), hence that option.

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
        num_classes: > 0 for a class-conditional model (see above and
            :class:`MultiScaleFlow`); 0 = unconditional.
        label_embedding_dim: ``E > 0`` conditions every layer on an ``E``-dimensional label
            embedding (needs ``num_classes > 0``); 0 = only the top prior sees the label.
        attention_heads: heads of the coupling networks' self-attention (must divide
            ``hidden``); 0 = no attention.
        attention_levels: with attention, how many of the coarsest levels get it (None = all).
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
        label_embedding_dim: int = 0,
        attention_heads: int = 0,
        attention_levels: int | None = None,
    ) -> None:
        if levels < 1 or steps < 1:
            raise ValueError(f"levels and steps must be >= 1, got levels={levels}, steps={steps}")
        if attention_levels is not None and not 1 <= attention_levels <= levels:
            raise ValueError(
                f"attention_levels must be in 1..levels={levels} (or None: all), "
                f"got {attention_levels}"
            )
        # The first level with attention: the coarsest ``attention_levels`` levels get it.
        first_attention = 0 if attention_levels is None else levels - attention_levels
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
                            FlowStep(
                                c,
                                hidden,
                                coupling,
                                permutation,
                                spline_bins,
                                spline_bound,
                                label_embedding_dim,
                                attention_heads if i >= first_attention else 0,
                            )
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
            label_embedding_dim,
        )
