"""THE registry of bijections (:data:`CASES`) and the helpers every flow/model test shares.

Every generic check in ``tests/flows/test_bijections.py`` and ``tests/flows/test_properties.py``
(shapes and finiteness, inverse∘forward = identity, forward log-det = −inverse log-det, log-det
against the float64 autograd Jacobian both ways, parameter and input gradients, channels-last
equivalence for images, Hypothesis round trips) runs on every :class:`Case` of :data:`CASES`,
as nflows' ``TransformTest`` does. A layer joins all of them with ONE entry in that list.

How to add a case
-----------------
Append ``Case(name, build, domain, ...)`` to :data:`CASES`:

* ``build(shape) -> Bijection`` builds the layer for an input of ``shape`` (``[B, C, H, W]`` for
  images, ``[B, D]`` for vectors): read the channels/features from ``shape[1]``. Zero-initialised
  conditioners and priors make many layers the identity at init, which the checks reject ("layer
  is trivial"): wrap the layer in :func:`perturb` (and :func:`init_actnorms` for ActNorms). Keep
  the perturbation moderate (0.03–0.5) so float32 inversion stays accurate.
* ``domain`` says where inputs live: :data:`IMAGES` (``[B, C, H, W]`` on the real line, the
  default), :data:`UNIT_IMAGES` (``[B, C, H, W]`` in ``(0, 1)``, e.g. preprocessing) or
  :data:`VECTORS` (``[B, D]`` on the real line; planar, radial, MAF/IAF, i-ResNet). Channels-last
  checks run for 4-D domains only. A new domain is one more :class:`Domain` constant.
* ``shape`` / ``tiny``: the float32 check shape and the float64 Jacobian shape, when the
  domain's defaults do not suit the layer (``tiny`` must stay tiny: the Jacobian is
  ``(B·D)²`` entries).
* ``min_channels`` / ``channel_step``: the channel (or feature) counts the layer accepts, for the
  Hypothesis shapes (``min_channels + k · channel_step``, ``k = 0..5``); ``bound``: the largest
  ``|x|`` Hypothesis draws on the real line (default 1e3) when the layer overflows beyond.
* Tolerances, only with a reason in a comment: ``logdet_rtol`` (log-det against the autograd
  Jacobian's, float64), ``inverse_logdet_rtol`` (forward vs −inverse log-det, float32),
  ``inverse_atol`` (float32 round trip, e.g. looser for an iterative inverse) and
  ``round_trip_rtol`` (float64 Hypothesis round trip).

Vector-shaped case (``[B, D]``)::

    Case("planar", lambda s: perturb(PlanarFlow(s[1]), 0.3), VECTORS),

Every registered map must be deterministic (the checks call it several times and compare).

A layer whose log-det is only an estimate (e.g. the i-ResNet power series with Hutchinson
traces) does not go through the Jacobian check: register its EXACT variant here, which checks
the map, its inverse and the shared log-det machinery::

    Case("iresnet-exact", lambda s: perturb(InvertibleResidualBlock(s[1], 16, logdet="exact"),
         0.1), VECTORS),

and check the estimator against that exact log-det, with a tolerance derived from the
estimator's bias and variance, in the family's own test file (``tests/flows/test_iresnet.py``
does: averaged over many draws, within ``bias_bound()`` and ``variance_bound()``). A
per-sample tolerance here could not fail: one Hutchinson draw errs by ~0.1 nats on log-dets of
~0.05 (measured, dim 6, 64 probe vectors). A deterministic approximation (a truncated series
without random probes, a finite-precision solver) can stay in the registry instead, with the
``logdet_rtol`` / ``inverse_logdet_rtol`` it needs and a comment giving the measured error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import Tensor, nn

from glowapp.flows import (
    ActNorm,
    BatchNormFlow,
    Bijection,
    CenterShift,
    ChannelCoupling,
    ChannelPermutation,
    CheckerboardCoupling,
    DiagonalScaling,
    EmergingConv2d,
    FlowSequential,
    InvConv1x1,
    InvConv1x1LU,
    Inverse,
    InverseAutoregressiveFlow,
    InvertibleResidualBlock,
    LogitTransform,
    MaskedAutoregressiveFlow,
    PlanarFlow,
    RadialFlow,
    Split,
    Squeeze,
    TopPrior,
    VectorCoupling,
)
from glowapp.flows.conditioning import Condition

Shape = tuple[int, ...]
COND_DIM = 4  # label embedding size of the conditional cases


# ---- helpers ------------------------------------------------------------------------------------
def perturb(module: nn.Module, scale: float = 0.1) -> nn.Module:
    """Add ``N(0, scale²)`` noise to every parameter, so zero-initialised nets are not the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def init_actnorms(module: nn.Module, x: Tensor) -> None:
    """Run one training-mode forward so every ActNorm inside ``module`` is data-initialised."""
    module.train()
    with torch.no_grad():
        module(x)


def assert_rel_close(actual: Tensor, expected: Tensor, rtol: float) -> None:
    """``|actual − expected| ≤ rtol · max(1, |expected|)`` elementwise (relative, absolute near 0)."""
    actual, expected = actual.detach().double(), expected.detach().double()
    err = (actual - expected).abs() / expected.abs().clamp_min(1.0)
    assert float(err.max()) < rtol, (
        f"relative error {float(err.max()):.3g} ≥ {rtol}: {actual} vs {expected}"
    )


def jacobian_logdets(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``log|det ∂fn(x)_b/∂x_b|`` for each sample ``b`` (float64), via the full autograd Jacobian.

    ``fn`` maps a batch ``[B, ...]`` to a batch with as many elements per sample. The Jacobian of
    the whole batch is computed and its off-diagonal (cross-sample) blocks are checked to be zero:
    samples must not interact.
    """
    b, d = x.shape[0], x[0].numel()
    jac = torch.autograd.functional.jacobian(lambda inp: fn(inp).reshape(b, -1).double(), x)
    jac = jac.reshape(b, d, b, d)
    blocks = torch.stack([jac[i, :, i] for i in range(b)])
    cross = jac.clone()
    for i in range(b):
        cross[i, :, i] = 0
    assert float(cross.abs().max()) == 0.0, "samples of a batch interact"
    return torch.linalg.slogdet(blocks)[1]


class SplitBijection(Bijection):
    """:class:`Split` as a same-shape bijection ``x -> cat(h, ε)``, so the shared checks apply
    (conditional, taking a Condition, when ``cond_dim > 0``)."""

    def __init__(self, num_channels: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.split = Split(num_channels, cond_dim)
        self.conditional = cond_dim > 0

    def forward(self, x: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        h, eps, ld = self.split(x, cond)
        return torch.cat([h, eps.to(h.dtype)], dim=1), ld

    def inverse(self, y: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        kept = self.split.kept
        return self.split.inverse(y[:, :kept], y[:, kept:], cond)


class Conditioned(Bijection):
    """A conditional layer with a fixed condition, as a plain bijection: sample ``b`` gets label
    ``b % 3`` of a random embedding table (row 3 is "no label"), guided with weight
    ``guidance`` when it is not 0. The table is a parameter: gradients reach it, ``.double()``
    converts it."""

    def __init__(self, layer: Bijection, cond_dim: int = COND_DIM, guidance: float = 0.0) -> None:
        super().__init__()
        assert layer.conditional, "wrap a conditional layer"
        self.layer = layer
        self.table = nn.Embedding(4, cond_dim)
        self.guidance = guidance

    def _cond(self, x: Tensor) -> Condition:
        labels = torch.arange(x.shape[0]) % 3
        if not self.guidance:
            return Condition(self.table(labels))
        null = self.table(torch.full_like(labels, 3))
        return Condition(self.table(labels), null, self.guidance)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.layer(x, self._cond(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.layer.inverse(y, self._cond(y))


class LabelledTopPrior(Bijection):
    """A class-conditional :class:`TopPrior` with labels ``b % num_classes`` for sample ``b``."""

    def __init__(self, num_channels: int, num_classes: int = 3) -> None:
        super().__init__()
        self.prior = TopPrior(num_channels, num_classes)

    def _labels(self, x: Tensor) -> Tensor:
        return torch.arange(x.shape[0]) % self.prior.num_classes

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.prior(x, self._labels(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.prior.inverse(y, self._labels(y))


# ---- input domains ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Domain:
    """Where a case's inputs live: their layout (``shape``'s rank) and range.

    ``shape`` / ``tiny`` are the default float32 check shape and float64 Jacobian shape;
    ``low`` / ``high`` bound the inputs (``None``: the real line).
    """

    name: str
    shape: Shape
    tiny: Shape
    low: float | None = None
    high: float | None = None

    @property
    def is_image(self) -> bool:
        """``[B, C, H, W]`` inputs (channels-last applies)."""
        return len(self.shape) == 4

    def sample(self, shape: Shape, dtype: torch.dtype = torch.float32) -> Tensor:
        """Random inputs: ``N(0, 1)`` on the real line, else uniform on the inner 98 % of the range."""
        if self.low is None or self.high is None:
            return torch.randn(shape, dtype=dtype)
        u = 0.01 + 0.98 * torch.rand(shape, dtype=dtype)
        return self.low + (self.high - self.low) * u

    def shapes(self, min_channels: int, channel_step: int) -> st.SearchStrategy[Shape]:
        """Hypothesis shapes: batch 1–3, ``min_channels + k·channel_step`` channels (k = 0..5),
        and for images even ``H, W`` in 2–8."""
        batch = st.integers(1, 3)
        channels = st.integers(0, 5).map(lambda k: min_channels + k * channel_step)
        if not self.is_image:
            return st.tuples(batch, channels)
        side = st.integers(1, 4).map(lambda k: 2 * k)
        return st.tuples(batch, channels, side, side)

    def values(self, shape: Shape, bound: float) -> st.SearchStrategy[np.ndarray]:
        """float64 arrays of ``shape`` in ``[−bound, bound]`` (real line) or within 1e-6 of the
        range's ends (Hypothesis mixes in the extremes).

        Magnitudes below 1e-6 become 0: subnormal intermediates make float64 convolutions ~100×
        slower without exercising anything new.
        """
        if self.low is None or self.high is None:
            lo, hi = -bound, bound
        else:
            lo, hi = self.low + 1e-6, self.high - 1e-6
        elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
        if self.low is None:
            elements = elements.map(lambda v: v if abs(v) >= 1e-6 else 0.0)
        return arrays(np.float64, shape, elements=elements)


IMAGES = Domain("images", shape=(4, 4, 8, 8), tiny=(2, 4, 2, 2))
UNIT_IMAGES = Domain("unit-interval images", shape=(4, 4, 8, 8), tiny=(2, 4, 2, 2), low=0, high=1)
VECTORS = Domain("vectors", shape=(8, 6), tiny=(3, 5))


# ---- the registry -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A bijection to check: how to build it for an input shape, its inputs and its tolerances.

    See the module docstring for every field; ``shape``/``tiny`` default to the domain's.
    """

    name: str
    build: Callable[[Shape], Bijection]
    domain: Domain = IMAGES
    shape: Shape = ()
    tiny: Shape = ()
    min_channels: int = 1
    channel_step: int = 1
    bound: float = 1e3
    logdet_rtol: float = 1e-4
    inverse_logdet_rtol: float = 1e-5
    inverse_atol: float = 1e-5
    round_trip_rtol: float = 1e-9

    def __post_init__(self) -> None:
        if not self.shape:
            object.__setattr__(self, "shape", self.domain.shape)
        if not self.tiny:
            object.__setattr__(self, "tiny", self.domain.tiny)
        if len(self.shape) != len(self.domain.shape) or len(self.tiny) != len(self.domain.shape):
            raise ValueError(
                f"case {self.name!r}: shapes {self.shape} / {self.tiny} do not have the rank of "
                f"its domain {self.domain.name!r} {self.domain.shape}; fix shape= / tiny="
            )

    def make(self, shape: Shape, dtype: torch.dtype = torch.float32) -> Bijection:
        """The case's layer for ``shape``, in eval mode and ``dtype``."""
        return self.build(shape).eval().to(dtype)

    def sample(self, shape: Shape, dtype: torch.dtype = torch.float32) -> Tensor:
        """Inputs of ``shape`` from the case's domain."""
        return self.domain.sample(shape, dtype)


def _actnorm(shape: Shape, scale: float) -> Bijection:
    layer = ActNorm(shape[1])
    init_actnorms(layer, 2.0 * torch.randn(16, *shape[1:]) + 1.0)
    return perturb(layer, scale) if scale else layer


def _batchnorm(shape: Shape) -> Bijection:
    layer = perturb(BatchNormFlow(shape[1]))
    layer.train()
    with torch.no_grad():
        for _ in range(20):  # non-trivial running statistics
            layer(3.0 * torch.randn(8, *shape[1:]) + 2.0)
    return layer


def _sequential(shape: Shape) -> Bijection:
    c = shape[1]
    flow = FlowSequential(
        [
            ActNorm(c),
            InvConv1x1LU(c),
            ChannelCoupling(c, hidden=16, transform="affine"),
            Squeeze(),
            CheckerboardCoupling(4 * c, hidden=16, transform="affine", parity=1),
            ChannelPermutation(4 * c, "shuffle"),
            TopPrior(4 * c),
        ]
    )
    perturb(flow)
    init_actnorms(flow, torch.randn(16, *shape[1:]))
    perturb(flow.layers[0])
    return flow


# A spline's slope can get close to its minimum (1e-3) where bins are narrow and tall, and there
# the float32 inverse is ill-conditioned (x error ≈ rounding error of y / slope): spline couplings
# get smaller perturbations, which keep slopes moderate. tests/flows/test_spline.py checks large
# parameters in float64.
SCALE = {"spline": 0.03}


def _coupling(transform: str, swap: bool, channels: int = 4, blocks: int = 0) -> Case:
    def build(shape: Shape) -> Bijection:
        coupling = ChannelCoupling(shape[1], 16, transform=transform, swap=swap, blocks=blocks)
        return perturb(coupling, SCALE.get(transform, 0.1))

    name = f"channel-coupling-{transform}-swap{int(swap)}-c{channels}-blocks{blocks}"
    return Case(name, build, shape=(4, channels, 8, 8), tiny=(2, channels, 2, 2), min_channels=2)


def _checkerboard(transform: str, parity: int) -> Case:
    def build(shape: Shape) -> Bijection:
        coupling = CheckerboardCoupling(shape[1], 16, transform=transform, parity=parity)
        return perturb(coupling, SCALE.get(transform, 0.1))

    return Case(
        f"checkerboard-{transform}-parity{parity}", build, shape=(4, 3, 8, 8), tiny=(2, 3, 4, 2)
    )


def _conditional_coupling(
    transform: str,
    swap: bool = False,
    blocks: int = 0,
    heads: int = 0,
    cond_dim: int = COND_DIM,
    guidance: float = 0.0,
) -> Case:
    """A :class:`ChannelCoupling` with label embeddings (``cond_dim``) and/or self-attention
    (``heads``), given its condition by :class:`Conditioned` (guided if ``guidance``)."""

    def build(shape: Shape) -> Bijection:
        coupling = ChannelCoupling(
            shape[1], 16, transform, swap, blocks, cond_dim=cond_dim, attention_heads=heads
        )
        layer = Conditioned(coupling, cond_dim, guidance) if cond_dim else coupling
        return perturb(layer, SCALE.get(transform, 0.1))

    name = (
        f"channel-coupling-{transform}-swap{int(swap)}-blocks{blocks}-cond{cond_dim}"
        f"-heads{heads}-guidance{guidance:g}"
    )
    return Case(name, build, shape=(4, 4, 8, 8), tiny=(2, 4, 2, 2), min_channels=2)


def _conditional_sequential(shape: Shape) -> Bijection:
    """Conditional and unconditional layers in one :class:`FlowSequential` that hands the
    condition to the conditional ones only."""
    c = shape[1]
    flow = FlowSequential(
        [
            ActNorm(c),
            ChannelCoupling(c, 16, "affine", cond_dim=COND_DIM, attention_heads=2),
            InvConv1x1LU(c),
            ChannelCoupling(c, 16, "affine", swap=True),
            TopPrior(c, cond_dim=COND_DIM),
        ]
    )
    layer = perturb(Conditioned(flow, guidance=0.5))
    init_actnorms(flow.layers[0], torch.randn(16, *shape[1:]))
    perturb(flow.layers[0])
    return layer


def _inverse_sequential(shape: Shape) -> Bijection:
    """The inverse of :func:`_sequential`, whose outputs ``[B, 4C, H/2, W/2]`` are its inputs."""
    b, c, h, w = shape
    return Inverse(_sequential((b, c // 4, 2 * h, 2 * w)))


CASES: list[Case] = [
    Case("squeeze", lambda s: Squeeze(), tiny=(2, 2, 4, 2)),
    Case("actnorm-data-init", lambda s: _actnorm(s, 0.0)),
    Case("actnorm-perturbed", lambda s: _actnorm(s, 0.3)),
    Case("invconv1x1", lambda s: perturb(InvConv1x1(s[1]))),
    Case("invconv1x1-lu", lambda s: perturb(InvConv1x1LU(s[1]))),
    Case("permutation-reverse", lambda s: ChannelPermutation(s[1], "reverse")),
    Case("permutation-shuffle", lambda s: ChannelPermutation(s[1], "shuffle")),
    _coupling("affine", False),
    _coupling("affine", True),
    _coupling("additive", False),
    _coupling("additive", True),
    _coupling("affine", False, channels=5),
    _coupling("affine", True, channels=5),
    _coupling("additive", True, channels=3),
    _coupling("affine", False, blocks=2),
    _coupling("additive", True, channels=5, blocks=1),
    _coupling("spline", False),
    _coupling("spline", True, channels=5),
    _coupling("spline", False, blocks=1),
    _checkerboard("affine", 0),
    _checkerboard("affine", 1),
    _checkerboard("additive", 0),
    _checkerboard("additive", 1),
    _checkerboard("spline", 1),
    Case(
        "checkerboard-affine-resnet",
        lambda s: perturb(CheckerboardCoupling(s[1], 16, "affine", parity=1, blocks=2)),
    ),
    Case("diagonal-scaling", lambda s: perturb(DiagonalScaling(s[1:]), 0.5)),
    Case("batchnorm-eval", _batchnorm),
    Case("top-prior", lambda s: perturb(TopPrior(s[1]), 0.5)),
    Case("top-prior-class-conditional", lambda s: perturb(LabelledTopPrior(s[1]), 0.5)),
    Case("logit", lambda s: LogitTransform(0.05), UNIT_IMAGES),
    Case("logit-alpha0", lambda s: LogitTransform(0.0), UNIT_IMAGES),
    Case("logit-alpha0.2", lambda s: LogitTransform(0.2), UNIT_IMAGES),
    Case("center-shift", lambda s: CenterShift()),
    # Split's prior log σ is an unbounded linear function of h: |h| ~ 1e3 overflows exp(log σ).
    # Its inputs are ActNorm-normalised activations in every model.
    Case("split", lambda s: perturb(SplitBijection(s[1]), 0.2), min_channels=2, bound=10.0),
    Case(
        "split-odd",
        lambda s: perturb(SplitBijection(s[1]), 0.2),
        shape=(4, 5, 8, 8),
        tiny=(2, 5, 2, 2),
        min_channels=3,
        channel_step=2,
        bound=10.0,
    ),
    Case("sequential", _sequential, tiny=(2, 2, 2, 2), min_channels=2),
    Case(
        "inverse-coupling",
        lambda s: Inverse(perturb(ChannelCoupling(s[1], 16, "affine"))),
        min_channels=2,
    ),
    # logit(sigmoid(x)) loses digits beyond |x| ≈ 15.
    Case("inverse-logit", lambda s: Inverse(LogitTransform(0.05)), bound=15.0),
    Case(
        "inverse-sequential",
        _inverse_sequential,
        shape=(4, 16, 4, 4),
        tiny=(2, 8, 1, 1),
        min_channels=8,
        channel_step=4,
    ),
    # The rest of the flow family (issue 17): Rezende & Mohamed, MAF/IAF, i-ResNet, emerging conv.
    Case("planar", lambda s: perturb(PlanarFlow(s[1]), 0.3), VECTORS),
    Case("radial", lambda s: perturb(RadialFlow(s[1]), 0.3), VECTORS),
    *(
        Case(
            f"{name}-{transformer}",
            lambda s, f=flow, t=transformer: perturb(f(s[1], 16, t), SCALE.get(t, 0.1)),
            VECTORS,
        )
        for name, flow in (("maf", MaskedAutoregressiveFlow), ("iaf", InverseAutoregressiveFlow))
        for transformer in ("affine", "spline")
    ),
    Case(
        "maf-affine-given-order",
        lambda s: perturb(MaskedAutoregressiveFlow(s[1], 16, order=range(s[1])[::-1])),
        VECTORS,
    ),
    # The 2-D playground's RealNVP coupling on [B, D] (needs D ≥ 2).
    *(
        Case(
            f"vector-coupling-{transform}{'-swap' if swap else ''}",
            lambda s, t=transform, w=swap: perturb(
                VectorCoupling(s[1], 16, t, w), SCALE.get(t, 0.1)
            ),
            VECTORS,
            min_channels=2,
        )
        for transform in ("affine", "spline")
        for swap in (False, True)
    ),
    # The series log-det is an estimate: tests/flows/test_iresnet.py measures it against "exact".
    Case(
        "iresnet-exact",
        lambda s: perturb(InvertibleResidualBlock(s[1], 16, logdet="exact"), 0.1),
        VECTORS,
    ),
    # Class conditioning (glowapp.flows.conditioning) and self-attention in the couplings: the
    # conditional layers with a fixed condition per sample, unguided and guided (a guided map
    # is a bijection too, with its own log-det).
    _conditional_coupling("affine"),
    _conditional_coupling("affine", swap=True, guidance=2.0),
    _conditional_coupling("spline", guidance=1.0),
    _conditional_coupling("additive", blocks=1),
    _conditional_coupling("affine", heads=2, cond_dim=0),
    _conditional_coupling("spline", swap=True, heads=4),
    _conditional_coupling("affine", heads=1, guidance=3.0),
    Case(
        "split-conditional",
        lambda s: perturb(Conditioned(SplitBijection(s[1], COND_DIM)), 0.2),
        min_channels=2,
        bound=10.0,
    ),
    Case(
        "split-conditional-guided",
        lambda s: perturb(Conditioned(SplitBijection(s[1], COND_DIM), guidance=1.5), 0.2),
        shape=(4, 5, 8, 8),
        tiny=(2, 5, 2, 2),
        min_channels=2,
        bound=10.0,
    ),
    Case(
        "top-prior-cond-dim",
        lambda s: perturb(Conditioned(TopPrior(s[1], cond_dim=COND_DIM)), 0.5),
    ),
    Case(
        "top-prior-cond-dim-guided",
        lambda s: perturb(Conditioned(TopPrior(s[1], cond_dim=COND_DIM), guidance=2.0), 0.3),
    ),
    Case(
        "sequential-conditional",
        _conditional_sequential,
        tiny=(2, 2, 2, 2),
        min_channels=2,
    ),
    Case("emerging-conv", lambda s: perturb(EmergingConv2d(s[1]), 0.1)),
    Case("emerging-conv-k5", lambda s: perturb(EmergingConv2d(s[1], 5), 0.1), tiny=(2, 2, 3, 3)),
]
