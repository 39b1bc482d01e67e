"""TarFlow (Zhai et al. 2024): transformer autoregressive flow blocks over image patches."""

from __future__ import annotations

from collections.abc import Sequence

from glowapp.flows.base import FlowSequential
from glowapp.flows.squeeze import Squeeze
from glowapp.flows.transformer_flow import TransformerFlowBlock
from glowapp.models.multiscale import MultiScaleFlow, as_hw


class TarFlow(MultiScaleFlow):
    """TarFlow: patchify, ``blocks`` × :class:`TransformerFlowBlock`, learned top prior.

    ONE level, no factor-out. ``log2(patch_size)`` squeezes turn each ``p×p`` patch of ``C``
    channels into one token of ``C·p²`` values (in the squeezes' order), at ``(H/p) × (W/p)``
    positions, ``T = HW/p²`` tokens in raster order. Block ``k`` is an affine autoregressive map
    over them, in raster order for even ``k`` and reversed for odd ``k`` (TarFlow alternates
    directions):

    ``z^{k}_t = (z^{k−1}_t − μ^k_t(z^{k−1}_{<t})) · exp(−α^k_t(z^{k−1}_{<t}))``,

    ``(μ^k, α^k)`` from a causal transformer (``layers`` pre-norm layers of width ``hidden`` with
    ``heads`` heads), ``|α| < scale_bound`` (soft clip). With the per-channel Gaussian top prior
    ``N(m, s²)`` (standardised, see :class:`MultiScaleFlow`):

    ``log p(x) = log N(ε; 0, I) − Σ_k Σ_{t,d} α^k_{t,d} − T·Σ_d log s_d``, ``ε = (z^K − m)/s``.

    Shapes for 1×28×28 Fashion-MNIST: ``patch_size=4`` gives ``[B, 16, 7, 7]``, 49 tokens of 16
    values; ``patch_size=2`` gives ``[B, 4, 14, 14]``, 196 tokens of 4.

    Cost: the density (training, ``encode``, ``log_prob``) is one parallel transformer pass per
    block. Sampling (``decode``) is sequential: every block generates its ``T`` tokens one at a
    time, ``blocks × T`` transformer calls on a single position each (196 for 4 blocks of 49
    tokens), with a key/value cache so that each call attends to the cached positions instead
    of re-running them.

    Against the paper: far smaller than its models (the defaults here train on a CPU in
    minutes), and nothing is reproduced to its numbers.
    glowapp's dequantisation and bits/dim replace TarFlow's Gaussian noise augmentation and its
    score-based denoising of samples; scales are soft-clipped rather than a plain ``exp``; the
    top prior is learned rather than ``N(0, I)``.

    Class conditioning (``num_classes > 0``, see :class:`MultiScaleFlow`): alone, it makes the
    top prior label-dependent and adds Glow's classifier head; with ``label_embedding_dim = E >
    0`` a learned ``E``-dimensional label embedding conditions every block (added to its tokens)
    and the top prior instead, and sampling can use classifier-free guidance, applied token by
    token (see :mod:`glowapp.flows.conditioning`).

    The block sizes depend on the number of tokens, so ``image_size`` is required (the CLI
    links it from the data). Channels-last runs work (the blocks read tokens in any layout).
    Memory-saving backprop works too, each block recomputed from its output with its sequential
    inverse (so a backward pass costs ``T`` extra transformer calls per block).

    Args:
        in_channels: image channels (1 grey, 3 RGB).
        patch_size: ``p``, a power of two dividing ``H`` and ``W``.
        blocks: autoregressive flow blocks ``K``.
        layers: transformer layers per block.
        hidden: transformer width.
        heads: attention heads (``hidden`` must be a multiple).
        image_size: ``H`` (square) or ``(H, W)``; required.
        num_classes: > 0 for a class-conditional model; 0 = unconditional.
        label_embedding_dim: ``E`` > 0 conditions the blocks on the label (needs
            ``num_classes > 0``); 0 = only the top prior sees it.
        scale_bound: the bound on each block's ``|α|``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        patch_size: int = 4,
        blocks: int = 4,
        layers: int = 2,
        hidden: int = 128,
        heads: int = 4,
        image_size: int | Sequence[int] | None = None,
        num_classes: int = 0,
        label_embedding_dim: int = 0,
        scale_bound: float = 3.0,
    ) -> None:
        if patch_size < 1 or patch_size & (patch_size - 1):
            raise ValueError(f"patch_size must be a power of two, got {patch_size}")
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks}")
        h, w = as_hw(image_size)
        if h <= 0 or w <= 0:
            raise ValueError(
                "TarFlow needs image_size=(H, W): its positional embeddings have one row per "
                "patch, so the number of patches is fixed when the model is built"
            )
        if h % patch_size or w % patch_size:
            raise ValueError(
                f"image size {h}x{w} is not divisible into {patch_size}x{patch_size} patches; "
                "use a patch size that divides both sides"
            )
        squeezes = patch_size.bit_length() - 1  # log2(p)
        channels = in_channels * patch_size**2
        tokens = (h // patch_size) * (w // patch_size)
        level = FlowSequential(
            [
                *(Squeeze() for _ in range(squeezes)),  # (B, C·p², H/p, W/p)
                *(
                    TransformerFlowBlock(
                        channels,
                        tokens,
                        hidden,
                        layers,
                        heads,
                        reverse=k % 2 == 1,
                        cond_dim=label_embedding_dim,
                        scale_bound=scale_bound,
                    )
                    for k in range(blocks)
                ),
            ]
        )
        # label_embedding_dim reaches MultiScaleFlow only when it is used.
        embedding = {"label_embedding_dim": label_embedding_dim} if label_embedding_dim else {}
        super().__init__(
            in_channels, [level], [channels], [squeezes], image_size, num_classes, **embedding
        )
