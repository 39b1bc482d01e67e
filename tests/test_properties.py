"""Hypothesis property tests: every bijection inverts exactly on random shapes and values.

Shapes (batch 1–3, channel counts each layer accepts, even H, W in 2–8) and values (up to ±1e3
where the layer is defined on all of R) are drawn by Hypothesis; layers are perturbed away from
their identity initialisation with a drawn seed and run in float64, so the round trip must hold
to ~1e-9 relative to the magnitudes involved. Also: the pixel preprocessing round trip.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
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
    FlowSequential,
    InvConv1x1,
    InvConv1x1LU,
    Inverse,
    LogitTransform,
    Preprocessor,
    Split,
    Squeeze,
    TopPrior,
)
from glowapp.flows.preprocess import dequantize, to_images

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Shape = tuple[int, int, int, int]
Builder = Callable[[Shape], Bijection]


def perturb(module: nn.Module, scale: float = 0.1) -> nn.Module:
    """Add ``N(0, scale²)`` noise to every parameter (conditioners and priors start at zero)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


# ---- strategies ---------------------------------------------------------------------------------
@st.composite
def shapes(draw: st.DrawFn, min_channels: int = 1, max_channels: int = 6) -> Shape:
    """``[B, C, H, W]`` with B in 1..3 and even H, W in 2..8."""
    b = draw(st.integers(1, 3))
    c = draw(st.integers(min_channels, max_channels))
    h, w = (2 * draw(st.integers(1, 4)) for _ in range(2))
    return (b, c, h, w)


def values(shape: Shape, lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` with elements in ``[lo, hi]`` (Hypothesis mixes in extremes).

    Magnitudes below 1e-6 become 0: subnormal intermediates make float64 convolutions ~100×
    slower without exercising anything new.
    """
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    return arrays(np.float64, shape, elements=elements.map(lambda v: v if abs(v) >= 1e-6 else 0.0))


# ---- builders (float64, eval mode, non-trivial) -------------------------------------------------
class SplitBijection(Bijection):
    """:class:`Split` as ``x -> cat(h, ε)``, so it goes through the same property."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.split = Split(num_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, eps, ld = self.split(x)
        return torch.cat([h, eps], dim=1), ld

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.split.inverse(y[:, : self.split.kept], y[:, self.split.kept :])


def _actnorm(s: Shape) -> Bijection:
    layer = ActNorm(s[1]).train()
    with torch.no_grad():
        layer(3.0 * torch.randn(4, *s[1:]) - 1.0)
    return perturb(layer)


def _batchnorm(s: Shape) -> Bijection:
    layer = perturb(BatchNormFlow(s[1])).train()
    with torch.no_grad():
        for _ in range(5):
            layer(2.0 * torch.randn(4, *s[1:]) + 1.0)
    return layer


def _sequential(s: Shape) -> Bijection:
    c = s[1]
    flow = FlowSequential(
        [
            InvConv1x1LU(c),
            ChannelCoupling(c, 8, "affine", swap=True),
            Squeeze(),
            CheckerboardCoupling(4 * c, 8, "additive", parity=1),
            ChannelPermutation(4 * c, "shuffle"),
            TopPrior(4 * c),
        ]
    )
    return perturb(flow)


REAL_LINE: dict[str, tuple[Builder, int]] = {  # name: (builder, min channels)
    "squeeze": (lambda s: Squeeze(), 1),
    "actnorm": (_actnorm, 1),
    "invconv1x1": (lambda s: perturb(InvConv1x1(s[1])), 1),
    "invconv1x1-lu": (lambda s: perturb(InvConv1x1LU(s[1])), 1),
    "permutation-reverse": (lambda s: ChannelPermutation(s[1], "reverse"), 1),
    "permutation-shuffle": (lambda s: ChannelPermutation(s[1], "shuffle"), 1),
    "coupling-affine": (lambda s: perturb(ChannelCoupling(s[1], 8, "affine")), 2),
    "coupling-affine-swap": (lambda s: perturb(ChannelCoupling(s[1], 8, "affine", swap=True)), 2),
    "coupling-additive-resnet": (
        lambda s: perturb(ChannelCoupling(s[1], 8, "additive", blocks=1)),
        2,
    ),
    "coupling-spline": (lambda s: perturb(ChannelCoupling(s[1], 8, "spline"), 0.03), 2),
    "checkerboard-affine": (lambda s: perturb(CheckerboardCoupling(s[1], 8, "affine")), 1),
    "checkerboard-spline": (
        lambda s: perturb(CheckerboardCoupling(s[1], 8, "spline", parity=1), 0.03),
        1,
    ),
    "checkerboard-additive-1": (
        lambda s: perturb(CheckerboardCoupling(s[1], 8, "additive", parity=1)),
        1,
    ),
    "diagonal-scaling": (lambda s: perturb(DiagonalScaling(s[1:]), 0.5), 1),
    "batchnorm": (_batchnorm, 1),
    "top-prior": (lambda s: perturb(TopPrior(s[1]), 0.5), 1),
    "center-shift": (lambda s: CenterShift(), 1),
    "split": (lambda s: perturb(SplitBijection(s[1]), 0.2), 2),
    "sequential": (_sequential, 2),
    "inverse-coupling": (lambda s: Inverse(perturb(ChannelCoupling(s[1], 8, "affine"))), 2),
    "inverse-logit": (lambda s: Inverse(LogitTransform(0.05)), 1),
}


BOUNDS = {
    # logit(sigmoid(x)) loses digits beyond |x| ≈ 15.
    "inverse-logit": 15.0,
    # Split's prior log σ is an unbounded linear function of h: |h| ~ 1e3 overflows exp(log σ).
    # Its inputs are ActNorm-normalised activations in every model.
    "split": 10.0,
}


def check_round_trip(layer: Bijection, x: Tensor) -> None:
    """``inverse(forward(x)) ≈ x`` relative to the magnitudes involved; log-dets finite, opposite."""
    with torch.no_grad():
        y, ld = layer(x)
        x2, ld_inv = layer.inverse(y)
    assert torch.isfinite(y).all() and torch.isfinite(ld).all() and torch.isfinite(ld_inv).all()
    assert ld.shape == ld_inv.shape == (x.shape[0],)
    assert x2.shape == x.shape and x2.dtype == torch.float64
    scale = 1.0 + float(x.abs().max()) + float(y.abs().max())
    assert float((x2 - x).abs().max()) <= 1e-9 * scale
    assert float((ld + ld_inv).abs().max()) <= 1e-9 * (1.0 + float(ld.abs().max()))


def _make(name: str, shape: Shape, seed: int) -> Bijection:
    torch.manual_seed(seed)
    return REAL_LINE[name][0](shape).eval().double()


def _property(name: str) -> Callable[[], None]:
    """The round-trip property for the layer ``name`` (inputs on the real line)."""
    min_channels = REAL_LINE[name][1]
    bound = BOUNDS.get(name, 1e3)

    @SETTINGS
    @given(data=st.data(), seed=st.integers(0, 2**16))
    def test(data: st.DataObject, seed: int) -> None:
        shape = data.draw(shapes(min_channels=min_channels))
        x = torch.from_numpy(data.draw(values(shape, -bound, bound)))
        check_round_trip(_make(name, shape, seed), x)

    test.__doc__ = f"{name}: exact round trip and finite, opposite log-dets on random inputs."
    return test


for _name in REAL_LINE:
    globals()[f"test_round_trip_{_name.replace('-', '_')}"] = _property(_name)


@SETTINGS
@given(data=st.data(), alpha=st.sampled_from([0.0, 0.05, 0.2]))
def test_round_trip_logit(data: st.DataObject, alpha: float) -> None:
    """LogitTransform round trip on ``y ∈ (0, 1)``, including values within 1e-6 of the ends."""
    shape = data.draw(shapes())
    y = torch.from_numpy(data.draw(values(shape, 1e-6, 1.0 - 1e-6)))
    check_round_trip(LogitTransform(alpha), y)


@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_split_signature_round_trip(data: st.DataObject, seed: int) -> None:
    """``Split.inverse(*Split(x)[:2]) == x`` with ``h`` of ``C // 2`` channels."""
    shape = data.draw(shapes(min_channels=2))
    x = torch.from_numpy(data.draw(values(shape, -BOUNDS["split"], BOUNDS["split"])))
    torch.manual_seed(seed)
    split = perturb(Split(shape[1]), 0.2).double()
    with torch.no_grad():
        h, eps, ld = split(x)
        x2, ld_inv = split.inverse(h, eps)
    assert h.shape[1] == shape[1] // 2 and eps.shape[1] == shape[1] - shape[1] // 2
    assert float((x2 - x).abs().max()) <= 1e-9 * (
        1.0 + float(x.abs().max()) + float(eps.abs().max())
    )
    assert torch.isfinite(ld).all() and torch.allclose(ld_inv, -ld, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(
    data=st.data(),
    n_bits=st.integers(1, 8),
    logit_alpha=st.sampled_from([None, 0.0, 0.05]),
)
def test_preprocessing_round_trip(
    data: st.DataObject, n_bits: int, logit_alpha: float | None
) -> None:
    """uint8 images → dequantise → (logit) → inverse → to_images gives the n-bit pixels back."""
    shape = data.draw(shapes(max_channels=3))
    pixels = torch.from_numpy(data.draw(arrays(np.uint8, shape)))
    expected = (pixels.long() // 2 ** (8 - n_bits)).float() / (2**n_bits - 1)
    pre = Preprocessor(n_bits=n_bits, logit_alpha=logit_alpha)
    x, ld = pre.encode_images(pixels, noise=False)  # bin centres: robust to float round-off
    assert torch.isfinite(x).all() and torch.isfinite(ld).all()
    assert torch.equal(pre.to_images(x), expected)
    # With noise, every dequantised value stays in its pixel's bin.
    y = dequantize(
        pixels, n_bits, generator=torch.Generator().manual_seed(data.draw(st.integers(0, 99)))
    )
    assert torch.equal(to_images(y, n_bits), expected)
