"""From discrete pixels to the flow's continuous input, and bits/dim.

Pipeline (per sub-pixel, ``K = 2**n_bits`` levels):

1. quantise an 8-bit pixel ``p ∈ {0..255}`` to ``k = ⌊p / 2^(8−n_bits)⌋ ∈ {0..K−1}``;
2. dequantise uniformly: ``y = (k + u) / K`` with ``u ~ U[0, 1)``, so ``y ∈ [0, 1)``;
3. a bijection ``y -> x``: the logit ``x = logit(α + (1 − 2α) y)`` (RealNVP, α = 0.05), or the
   shift ``x = y − ½`` (the reference Glow code);
4. the flow gives ``log p_X(x)``.

Since ``P(k) ≥ exp(E_u[log p_Y(y)]) · K^{−D}`` (Jensen over the bin of volume ``K^{−D}``),
``log p_Y(y) = log p_X(x) + log|det ∂x/∂y|`` is a bound on the discrete log-likelihood after
adding ``−D log K``. :func:`bits_per_dim` turns that into the papers' number. With noise
``u ~ q(u | k)`` from a learned density instead (variational dequantisation, Ho et al. 2019,
:mod:`glowapp.flows.dequantization`) the bound is ``E_q[log p_Y(y) − log q(u | k)] − D log K``,
and ``log q`` is one more term of :func:`bits_per_dim`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from glowapp.flows.base import Bijection, zero_logdet


def log_sigmoid_derivative(x: Tensor) -> Tensor:
    """``log σ'(x) = log σ(x) + log σ(−x) = −softplus(x) − softplus(−x)``, elementwise, same shape.

    Stable for any ``x`` (no ``log`` of a sigmoid that rounded to 0 or 1). It is the log-density
    of the standard logistic distribution and the log-slope of the sigmoid.
    """
    return -(F.softplus(x) + F.softplus(-x))


def bits_per_dim(
    log_px: Tensor,
    logdet_preprocess: Tensor,
    num_dims: int,
    n_bits: int,
    log_q: Tensor | float = 0.0,
) -> Tensor:
    """Negative log-likelihood of the discrete data in bits per sub-pixel.

    ``bpd = −(log p_X(x) + log|det ∂x/∂y| − log q(u | k) − D · log 2^n_bits) / (D · ln 2)``

    with ``log p_X(x)`` the flow's log-density (all priors and log-dets, nats, ``[B]``),
    ``log|det ∂x/∂y|`` the preprocessing log-det (``[B]``), ``D = C·H·W`` real sub-pixels (never
    padding), ``y = (k + u) / 2^n_bits ∈ [0, 1)`` the dequantised image and ``log q(u | k)`` the
    log-density of its noise ``u ∈ [0, 1)^D`` (``[B]``; 0 for uniform noise). Returns ``[B]``.
    """
    dtype = torch.promote_types(log_px.dtype, torch.float32)  # float32 under autocast, or float64
    log_py = log_px.to(dtype) + logdet_preprocess.to(dtype) - log_q
    log_pk = log_py - num_dims * n_bits * math.log(2.0)
    return -log_pk / (num_dims * math.log(2.0))


def check_n_bits(n_bits: int) -> int:
    """Validate ``n_bits`` (1..8)."""
    if not isinstance(n_bits, int) or not 1 <= n_bits <= 8:
        raise ValueError(f"n_bits must be an integer in 1..8, got {n_bits!r}")
    return n_bits


def quantize(images: Tensor, n_bits: int) -> Tensor:
    """Integer levels ``k ∈ {0..2^n_bits − 1}`` (float tensor) of uint8 ``[0, 255]`` or float ``[0, 1]`` images."""
    if images.dtype == torch.uint8:
        pixels = images.float()
    elif images.is_floating_point():
        lo, hi = float(images.min()), float(images.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float images must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
                "pass uint8 tensors for 0..255 pixels"
            )
        pixels = (images.to(torch.promote_types(images.dtype, torch.float32)) * 255.0).round()
    else:
        raise TypeError(
            f"images must be uint8 (0..255) or float in [0, 1], got dtype {images.dtype}"
        )
    return torch.div(pixels, 2 ** (8 - n_bits), rounding_mode="floor")


def dequantize(
    images: Tensor, n_bits: int, noise: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """``y = (k + u) / 2^n_bits ∈ [0, 1)``, ``u ~ U[0, 1)`` (or ``u = ½``, the bin centre, if ``noise=False``).

    ``generator`` (on the images' device) makes the noise reproducible.
    """
    k = quantize(images, n_bits)
    if noise:
        u = torch.rand(k.shape, generator=generator, device=k.device, dtype=k.dtype)
    else:
        u = torch.full_like(k, 0.5)
    return place_in_bin(k, u, n_bits)


def place_in_bin(k: Tensor, u: Tensor, n_bits: int) -> Tensor:
    """``y = (k + u) / 2^n_bits`` for levels ``k`` and noise ``u ∈ [0, 1)``, kept inside ``k``'s bin."""
    y = (k + u) / 2**n_bits
    # In float32, ``k + u`` rounds up to ``k + 1`` when ``u`` is within half an ulp of 1 (about 1
    # in 10^5 draws for k ≥ 128), which would put ``y`` in the next bin (or at 1.0): clamp it to
    # the largest float below the bin's upper edge ``(k + 1) / K`` (exact: K is a power of 2).
    return torch.minimum(y, torch.nextafter((k + 1) / 2**n_bits, torch.zeros_like(y)))


def to_images(y: Tensor, n_bits: int) -> Tensor:
    """Map ``y ∈ [0, 1)`` back to displayable images in ``[0, 1]``: the level ``k = ⌊K·y⌋``, as ``k / (K − 1)``."""
    levels = 2**n_bits
    k = (y.float() * levels).floor().clamp(0, levels - 1)
    return k / (levels - 1)


class LogitTransform(Bijection):
    """``x = logit(α + (1 − 2α) y)`` for ``y ∈ (0, 1)`` (RealNVP §4.1).

    inverse: ``y = (sigmoid(x) − α) / (1 − 2α)``.
    log-det: ``Σ [log(1 − 2α) − log p − log(1 − p)]`` with ``p = α + (1 − 2α) y``.
    ``α > 0`` keeps ``p`` away from 0 and 1, where the logit is infinite.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0.0 <= alpha < 0.5:
            raise ValueError(f"logit alpha must be in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        p = self.alpha + (1 - 2 * self.alpha) * y
        x = p.log() - (-p).log1p()
        ld = math.log(1 - 2 * self.alpha) - p.log() - (-p).log1p()
        return x, ld.flatten(1).sum(dim=1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p = torch.sigmoid(x)
        y = (p - self.alpha) / (1 - 2 * self.alpha)
        # log dp/dx = log p + log(1 − p) = log σ'(x)
        ld = log_sigmoid_derivative(x) - math.log(1 - 2 * self.alpha)
        return y, ld.flatten(1).sum(dim=1)


class CenterShift(Bijection):
    """``x = y − ½`` (the reference Glow code's preprocessing); log-det 0."""

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y - 0.5, zero_logdet(y)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x + 0.5, zero_logdet(x)


class Preprocessor(Bijection):
    """Dequantisation plus the ``y -> x`` bijection, with the bits/dim of the whole chain.

    ``Preprocessor(n_bits=8, logit_alpha=0.05)`` uses the logit; ``logit_alpha=None`` uses the shift.
    ``forward``/``inverse`` are the ``y <-> x`` bijection; :meth:`dequantize` and :meth:`to_images`
    handle the discrete side.
    """

    def __init__(self, n_bits: int = 8, logit_alpha: float | None = 0.05) -> None:
        super().__init__()
        self.n_bits = check_n_bits(n_bits)
        self.logit_alpha = logit_alpha
        self.transform: Bijection = (
            CenterShift() if logit_alpha is None else LogitTransform(logit_alpha)
        )

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.transform(y)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.transform.inverse(x)

    def dequantize(
        self, images: Tensor, noise: bool = True, generator: torch.Generator | None = None
    ) -> Tensor:
        """uint8 ``[0, 255]`` or float ``[0, 1]`` images → dequantised ``y ∈ [0, 1)``."""
        return dequantize(images, self.n_bits, noise=noise, generator=generator)

    def encode_images(
        self, images: Tensor, noise: bool = True, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Images → the flow's input ``x`` and the preprocessing log-det ``[B]``."""
        return self.forward(self.dequantize(images, noise=noise, generator=generator))

    def to_images(self, x: Tensor) -> Tensor:
        """The flow's space → images in ``[0, 1]`` quantised to ``n_bits``."""
        y, _ = self.inverse(x.float())
        return to_images(y, self.n_bits)

    def bits_per_dim(
        self, log_px: Tensor, logdet_preprocess: Tensor, num_dims: int, log_q: Tensor | float = 0.0
    ) -> Tensor:
        """See :func:`bits_per_dim`."""
        return bits_per_dim(log_px, logdet_preprocess, num_dims, self.n_bits, log_q)
