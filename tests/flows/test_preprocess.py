"""Dequantisation, the ``y -> x`` transforms and bits/dim (:mod:`glowapp.flows.preprocess`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers.bijections import IMAGES
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from glowapp.flows import (
    CenterShift,
    LogitTransform,
    Preprocessor,
    bits_per_dim,
    standard_normal_log_prob,
)
from glowapp.flows.preprocess import check_n_bits, dequantize, quantize, to_images

pytestmark = pytest.mark.usefixtures("single_thread")

ALL_PIXELS = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)


# ---- bits per dim -------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", [8, 5])
def test_bits_per_dim_by_hand_center_shift(n_bits: int) -> None:
    """Identity flow + standard normal prior + ``x = y − ½``: bpd from the closed form."""
    pre = Preprocessor(n_bits=n_bits, logit_alpha=None)
    assert isinstance(pre.transform, CenterShift)
    pixels = torch.tensor([[[[0, 37], [128, 255]], [[3, 200], [90, 17]]]], dtype=torch.uint8)
    x, ld_pre = pre.encode_images(pixels, noise=False)
    assert torch.equal(ld_pre, torch.zeros(1))
    d = pixels.numel()
    levels = [int(p) // 2 ** (8 - n_bits) for p in pixels.flatten().tolist()]
    xs = [(k + 0.5) / 2**n_bits - 0.5 for k in levels]
    assert torch.allclose(
        x.flatten().double(), torch.tensor(xs, dtype=torch.float64), rtol=0, atol=1e-7
    )
    by_hand = (
        0.5 * sum(v * v for v in xs) + d / 2 * math.log(2 * math.pi) + d * n_bits * math.log(2)
    )
    by_hand /= d * math.log(2)
    log_px = standard_normal_log_prob(x)  # identity flow, standard normal prior
    for bpd in (bits_per_dim(log_px, ld_pre, d, n_bits), pre.bits_per_dim(log_px, ld_pre, d)):
        assert bpd.shape == (1,)
        assert abs(float(bpd) - by_hand) < 1e-6


def test_bits_per_dim_at_the_prior_mode() -> None:
    """At ``x = 0`` under N(0, I) the bpd is ``n_bits + ½·log₂(2π)`` for any dimension."""
    for n_bits, d in ((8, 3072), (5, 784), (1, 1)):
        log_px = torch.full((2,), -d / 2 * math.log(2 * math.pi))
        bpd = bits_per_dim(log_px, torch.zeros(2), d, n_bits)
        assert torch.allclose(
            bpd.double(),
            torch.full((2,), n_bits + 0.5 * math.log2(2 * math.pi), dtype=torch.float64),
            atol=1e-5,
        )


@pytest.mark.parametrize(("n_bits", "alpha"), [(8, 0.05), (5, 0.05), (3, 0.0)])
def test_bits_per_dim_by_hand_logit(n_bits: int, alpha: float) -> None:
    """Logit preprocessing: ``x`` and ``log|dx/dy|`` written out by hand, then bpd."""
    pre = Preprocessor(n_bits=n_bits, logit_alpha=alpha)
    pixels = torch.tensor([[[[0, 64, 255], [12, 130, 250]]]], dtype=torch.uint8)
    x, ld_pre = pre.encode_images(pixels, noise=False)
    d = pixels.numel()
    ys = [(int(p) // 2 ** (8 - n_bits) + 0.5) / 2**n_bits for p in pixels.flatten().tolist()]
    ps = [alpha + (1 - 2 * alpha) * y for y in ys]
    xs = [math.log(p / (1 - p)) for p in ps]
    ld = sum(math.log(1 - 2 * alpha) - math.log(p) - math.log(1 - p) for p in ps)
    assert torch.allclose(
        x.flatten().double(), torch.tensor(xs, dtype=torch.float64), rtol=1e-6, atol=1e-6
    )
    assert abs(float(ld_pre) - ld) < 1e-5 * max(1.0, abs(ld))
    log_px = -0.5 * sum(v * v for v in xs) - d / 2 * math.log(2 * math.pi)
    by_hand = -(log_px + ld - d * n_bits * math.log(2)) / (d * math.log(2))
    # The formula itself, fed the hand-computed terms (float64), to float32 round-off ...
    bpd = pre.bits_per_dim(torch.tensor([log_px], dtype=torch.float64), torch.tensor([ld]), d)
    assert abs(float(bpd) - by_hand) < 1e-6
    # ... and end to end from the layer's own float32 x and log-det.
    bpd = pre.bits_per_dim(standard_normal_log_prob(x), ld_pre, d)
    assert abs(float(bpd) - by_hand) < 5e-6


# ---- quantisation -------------------------------------------------------------------------------
@pytest.mark.parametrize("n_bits", range(1, 9))
def test_dequantize_stays_in_its_bin(n_bits: int) -> None:
    """``⌊K·y⌋ = k`` and ``0 ≤ y < 1`` for every pixel value and noise draw; no noise: bin centres."""
    levels = 2**n_bits
    pixels = ALL_PIXELS.expand(64, 3, 16, 16)
    k = quantize(pixels, n_bits)
    assert torch.equal(k, (pixels.long() // 2 ** (8 - n_bits)).float())
    assert float(k.min()) == 0 and float(k.max()) == levels - 1
    y = dequantize(pixels, n_bits)
    assert torch.equal((y * levels).floor(), k)
    assert float(y.min()) >= 0.0 and float(y.max()) < 1.0
    centre = dequantize(pixels, n_bits, noise=False)
    assert torch.equal(centre, (k + 0.5) / levels)


def test_dequantize_top_bin_never_rounds_up() -> None:
    """Float32 ``k + u`` rounds to ``k + 1`` for ``u`` within an ulp of 1: y must stay in bin k."""
    pixels = torch.tensor([255, 200, 129], dtype=torch.uint8).repeat(1_000_000)
    y = dequantize(pixels, 8, generator=torch.Generator().manual_seed(0))
    assert float(y.max()) < 1.0
    assert torch.equal((y * 256).floor(), pixels.float())


def test_uint8_and_float_inputs_agree() -> None:
    """uint8 pixels and the same pixels as floats ``p / 255`` quantise identically."""
    as_float = ALL_PIXELS.float() / 255
    for n_bits in range(1, 9):
        assert torch.equal(quantize(ALL_PIXELS, n_bits), quantize(as_float, n_bits))
        assert torch.equal(
            dequantize(ALL_PIXELS, n_bits, generator=torch.Generator().manual_seed(1)),
            dequantize(as_float, n_bits, generator=torch.Generator().manual_seed(1)),
        )
    # Floats that are p/255 only up to round-off (float64 maths, resampling) map to the same p.
    for nudged in (as_float - 1e-4, as_float + 1e-4, ALL_PIXELS.double() / 255):
        assert torch.equal(quantize(nudged.clamp(0, 1), 8), ALL_PIXELS.float())


def test_quantize_rejects_bad_inputs() -> None:
    """Out-of-range floats raise ValueError; integer dtypes other than uint8 raise TypeError."""
    for bad in (torch.tensor([-0.01, 0.5]), torch.tensor([0.2, 1.01]), torch.tensor([0.0, 255.0])):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            quantize(bad, 8)
    for dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.bool):
        with pytest.raises(TypeError, match="uint8"):
            dequantize(torch.zeros(2, dtype=dtype), 8)


def test_to_images_inverts_dequantize() -> None:
    """``to_images(dequantize(p))`` is ``p / 255`` for 8 bits and the 5-bit level ``k / 31`` for 5."""
    pixels = ALL_PIXELS.expand(8, 3, 16, 16)
    assert torch.equal(to_images(dequantize(pixels, 8), 8), pixels.float() / 255)
    assert torch.equal(to_images(dequantize(pixels, 5), 5), (pixels.long() // 8).float() / 31)
    # Quantising an already-5-bit image is idempotent.
    five = to_images(dequantize(pixels, 5), 5)
    assert torch.equal(to_images(dequantize((five * 255).round().to(torch.uint8), 5), 5), five)


@pytest.mark.parametrize("logit_alpha", [0.05, 0.0, None])
@pytest.mark.parametrize("n_bits", [8, 5, 1])
def test_preprocessor_round_trip(n_bits: int, logit_alpha: float | None) -> None:
    """pixels → dequantise → logit → inverse → to_images gives back the (quantised) pixels."""
    pre = Preprocessor(n_bits=n_bits, logit_alpha=logit_alpha)
    pixels = ALL_PIXELS.expand(2, 3, 16, 16)
    x, ld = pre.encode_images(pixels, noise=False)
    assert torch.isfinite(x).all() and torch.isfinite(ld).all() and ld.shape == (2,)
    expected = (pixels.long() // 2 ** (8 - n_bits)).float() / (2**n_bits - 1)
    assert torch.equal(pre.to_images(x), expected)
    y, ld_inv = pre.inverse(x)
    assert float((y - pre.dequantize(pixels, noise=False)).abs().max()) < 1e-6
    assert torch.allclose(ld_inv, -ld, rtol=1e-5, atol=1e-3)


def test_n_bits_validation() -> None:
    """``n_bits`` must be an integer in 1..8."""
    for bad in (0, 9, -1, 2.0, "8"):
        with pytest.raises(ValueError, match="n_bits"):
            check_n_bits(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_bits"):
        Preprocessor(n_bits=0)
    with pytest.raises(ValueError, match="n_bits"):
        Preprocessor(n_bits=9)
    assert [check_n_bits(n) for n in range(1, 9)] == list(range(1, 9))


def test_logit_alpha_validation() -> None:
    """``α`` must lie in [0, ½)."""
    for bad in (-0.1, 0.5, 0.7):
        with pytest.raises(ValueError, match="alpha"):
            LogitTransform(bad)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    data=st.data(),
    n_bits=st.integers(1, 8),
    logit_alpha=st.sampled_from([None, 0.0, 0.05]),
)
def test_preprocessing_round_trip_property(
    data: st.DataObject, n_bits: int, logit_alpha: float | None
) -> None:
    """uint8 images → dequantise → (logit) → inverse → to_images gives the n-bit pixels back."""
    shape = data.draw(IMAGES.shapes(min_channels=1, channel_step=1))
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
