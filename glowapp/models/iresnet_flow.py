"""A multi-scale i-ResNet (Behrmann et al. 2019) for images: ActNorm → invertible residual steps."""

from __future__ import annotations

from collections.abc import Sequence

from glowapp.flows.actnorm import ActNorm
from glowapp.flows.base import Bijection, FlowSequential
from glowapp.flows.iresnet import FlattenedResidualBlock
from glowapp.flows.squeeze import Squeeze
from glowapp.models.multiscale import MultiScaleFlow, as_hw


class IResNetFlow(MultiScaleFlow):
    """i-ResNet image model: ``levels`` × [squeeze, ``steps`` × (ActNorm, residual block), split].

    Glow's multi-scale layout (squeeze, factor-out of half the channels between levels, learned
    top prior; see :class:`MultiScaleFlow`) with each step an :class:`ActNorm` followed by an
    invertible residual block ``x + g(x)``, ``Lip(g) ≤ lipschitz³ < 1``
    (:class:`~glowapp.flows.iresnet.FlattenedResidualBlock`): ``g`` is a dense 3-layer
    spectrally normalised MLP on the level's whole flattened activation (``C·H·W`` numbers: 784
    at the first level of a 28×28 greyscale image), so, unlike a coupling, every output depends
    on every input. Its log-det is the power series ``Σ_k (−1)^{k+1} tr(J_g^k)/k`` truncated at
    ``series_terms`` with Hutchinson trace estimates (``logdet="series"``: a stochastic,
    slightly biased estimate, so training losses and ``log_prob`` are estimates too; the bias
    bound is :meth:`InvertibleResidualBlock.bias_bound`) or ``slogdet`` of the explicit Jacobian
    (``logdet="exact"``: ``O((C·H·W)³)`` per image, for tiny images and tests). ``decode``
    inverts each block by fixed-point iteration (contraction rate ``≤ lipschitz³``).

    The blocks' sizes depend on the image size, so ``image_size`` is required (the CLI links
    it from the data). Memory-saving backprop works (each block is recomputed from its
    fixed-point inverse; with ``"series"`` the recomputation draws new Hutchinson probes, so
    the gradients are another unbiased draw rather than the stored graph's), and so does
    channels-last (the blocks flatten in ``C, H, W`` order whatever the layout).

    Args:
        in_channels: image channels (1 grey, 3 RGB).
        levels: number of scales ``L`` (``H`` and ``W`` must be multiples of ``2**levels``).
        steps: ActNorm + residual-block steps per level.
        hidden: width of the residual blocks' two hidden layers.
        lipschitz: spectral-norm bound ``c`` of each linear layer, in ``(0, 1)``.
        logdet: ``"series"`` (Hutchinson power series) or ``"exact"``.
        series_terms: terms ``n`` of the power series.
        hutchinson_samples: probe vectors per trace estimate.
        image_size: ``H`` (square) or ``(H, W)``; required.
        num_classes: > 0 for a class-conditional model (see :class:`MultiScaleFlow`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        levels: int = 2,
        steps: int = 4,
        hidden: int = 512,
        lipschitz: float = 0.9,
        logdet: str = "series",
        series_terms: int = 10,
        hutchinson_samples: int = 1,
        image_size: int | Sequence[int] | None = None,
        num_classes: int = 0,
    ) -> None:
        if levels < 1 or steps < 1:
            raise ValueError(f"levels and steps must be >= 1, got levels={levels}, steps={steps}")
        h, w = as_hw(image_size)
        if h <= 0 or w <= 0:
            raise ValueError(
                "IResNetFlow needs image_size=(H, W): its residual blocks act on each level's "
                "whole flattened activation, so their sizes are fixed when the model is built"
            )
        d = 2**levels
        if h % d or w % d:
            raise ValueError(
                f"image size {h}x{w} cannot be squeezed by this model: height and width must be "
                f"multiples of {d} (= 2**levels); use fewer levels or another size"
            )
        options = {
            "lipschitz": lipschitz,
            "logdet": logdet,
            "series_terms": series_terms,
            "hutchinson_samples": hutchinson_samples,
        }
        blocks: list[Bijection] = []
        level_channels: list[int] = []
        c = in_channels
        for i in range(levels):
            c, h, w = 4 * c, h // 2, w // 2  # squeeze: (B, 4C, H/2, W/2)
            steps_i: list[Bijection] = []
            for _ in range(steps):
                steps_i += [ActNorm(c), FlattenedResidualBlock((c, h, w), hidden, **options)]
            blocks.append(FlowSequential([Squeeze(), *steps_i]))
            level_channels.append(c)
            if i < levels - 1:
                c = c // 2  # split: half the channels leave as this level's latent
        super().__init__(in_channels, blocks, level_channels, [1] * levels, image_size, num_classes)
