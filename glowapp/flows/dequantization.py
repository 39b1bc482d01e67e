"""Dequantisation: from discrete levels ``k`` to a continuous ``y = (k + u) / K``, ``u ∈ [0, 1)^D``.

A flow density ``p_Y`` on ``[0, 1)^D`` gives the discrete data the probability
``P(k) = K^{−D} ∫ p_Y((k + u) / K) du``. For any density ``q(u | k)`` on the unit cube
(Ho et al. 2019, Flow++ §3.1), by Jensen

``log P(k) ≥ E_{u ~ q}[log p_Y((k + u)/K) − log q(u | k)] − D log K``   (the bound),

which is what training minimises and ``test/bpd`` reports (via
:func:`glowapp.flows.preprocess.bits_per_dim`, whose ``log_q`` term is ``log q(u | k)``). The
importance-weighted estimate with ``S`` draws (Burda et al. 2016),

``log P(k) ≈ log (1/S) Σ_s exp(log p_Y(y_s) − log q(u_s | k)) − D log K``,

is at least the bound for the same draws, and its expectation rises to ``log P(k)`` as ``S``
grows (:func:`importance_weighted`; ``test/bpd_iw``).

* :class:`UniformDequantization`: ``q = U[0, 1)^D``, ``log q = 0`` (the papers' usual choice).
* :class:`VariationalDequantization`: a learned conditional flow ``q(u | k)``.
* :class:`GaussianNoise`: not a dequantisation in the sense above. It trains the flow on noisy
  images ``ỹ = (k + ½)/K + σ ε`` (TarFlow, Zhai et al. 2024), so the model is a density over
  *noisy* images, ``p_σ = p * N(0, σ²I)``, and its bits/dim are not the discrete bits/dim of the
  papers (Gaussian noise leaves the bins, so the bound above does not hold). Its samples are
  denoised with the model's own score (Tweedie's formula, see :class:`glowapp.ImageFlow`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from glowapp.flows.coupling import CheckerboardCoupling
from glowapp.flows.preprocess import (
    dequantize,
    log_sigmoid_derivative,
    place_in_bin,
    quantize,
)

DEQUANTIZATIONS = ("uniform", "variational", "gaussian")
_TINY = 2.0**-24  # 1 − _TINY is the largest float32 below 1


def importance_weighted(log_weights: Tensor) -> Tensor:
    """``log (1/S) Σ_s exp(log w_s)``: ``[S, B] -> [B]`` (nats), computed stably."""
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def logistic_log_prob(eps: Tensor) -> Tensor:
    """``Σ log Logistic(ε; 0, 1) = Σ [log σ(ε) + log σ(−ε)]`` over all but the batch: ``[B, ...] -> [B]``."""
    return log_sigmoid_derivative(eps).flatten(1).sum(dim=1)


def logistic_noise(
    shape: torch.Size, generator: torch.Generator | None = None, device: torch.device | None = None
) -> Tensor:
    """Standard logistic noise ``ε = log U − log(1 − U)``, ``U ~ U(0, 1)``, of ``shape`` (float32).

    ``U`` is kept in ``[2⁻²⁴, 1 − 2⁻²⁴]``, so ``ε`` is finite (``|ε| ≤ 16.7``).
    """
    uniform = torch.rand(shape, generator=generator, device=device).clamp(_TINY, 1 - _TINY)
    return uniform.log() - (-uniform).log1p()


class UniformDequantization(nn.Module):
    """``u ~ U[0, 1)^D``: ``y = (k + u) / 2^n_bits``, ``log q(u | k) = 0``."""

    def __init__(self, n_bits: int) -> None:
        super().__init__()
        self.n_bits = n_bits

    def forward(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """uint8 or ``[0, 1]`` images ``[B, C, H, W]`` → ``(y, log q(u | k))``: ``[B, C, H, W]``, ``[B]``."""
        y = dequantize(images, self.n_bits, noise=True, generator=generator)
        return y, y.new_zeros(y.shape[0])


class VariationalDequantization(nn.Module):
    """A learned dequantisation density ``q(u | k)`` (Ho et al. 2019, Flow++ §3.1), a conditional flow.

    Sampling: ``ε ~ Logistic(0, 1)^D`` → ``steps`` affine checkerboard couplings (alternating
    parity; bounded scale, see :class:`glowapp.flows.coupling.AffineTransform`) whose
    conditioners also see features ``c = CNN(k)`` of the discrete image → ``z`` →
    ``u = σ(z) ∈ (0, 1)``. With ``f`` the couplings,

    ``log q(u | k) = log Logistic(ε) − log|det ∂f/∂ε| − Σ log σ'(z)``,  ``log σ'(z) = log σ(z) + log σ(−z)``.

    The couplings are zero-initialised (the identity), and the sigmoid of a standard logistic
    variable is uniform, so training starts *exactly* at uniform dequantisation
    (``u ~ U(0, 1)``, ``log q = 0``). The feature CNN (conv3×3 → ReLU → conv3×3) sees the levels
    at their bin centres, ``(k + ½)/K − ½``.

    Args:
        in_channels: image channels.
        n_bits: bits per sub-pixel (``K = 2**n_bits`` levels).
        hidden: width of the feature CNN and of the couplings' conditioners.
        steps: number of couplings.
        features: channels of ``c``.
    """

    def __init__(
        self, in_channels: int, n_bits: int, hidden: int = 32, steps: int = 4, features: int = 16
    ) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(
                f"variational dequantisation needs at least 1 coupling, got steps={steps}"
            )
        if hidden < 1:
            raise ValueError(
                f"the dequantisation networks' width must be positive, got hidden={hidden}"
            )
        self.n_bits = n_bits
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, features, 3, padding=1),
        )
        self.couplings = nn.ModuleList(
            CheckerboardCoupling(in_channels, hidden, "affine", parity=i, context_channels=features)
            for i in range(steps)
        )

    def transform(self, eps: Tensor, levels: Tensor) -> tuple[Tensor, Tensor]:
        """The bijection ``ε -> u`` given levels ``k`` (both ``[B, C, H, W]``): ``(u, log|det ∂u/∂ε|)``."""
        context = self.features((levels + 0.5) / 2**self.n_bits - 0.5)  # (B, features, H, W)
        z, logdet = eps, eps.new_zeros(eps.shape[0])
        for coupling in self.couplings:
            z, ld = coupling(z, context)
            logdet = logdet + ld
        log_slope = log_sigmoid_derivative(z).flatten(1).sum(dim=1)  # log|det ∂u/∂z|, [B]
        return torch.sigmoid(z), logdet + log_slope

    def forward(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """uint8 or ``[0, 1]`` images ``[B, C, H, W]`` → ``(y, log q(u | k))``: ``[B, C, H, W]``, ``[B]``.

        ``u ~ q(u | k)`` is reparameterised, so both outputs are differentiable in the parameters.
        ``generator`` (on the images' device) makes the draw reproducible.
        """
        levels = quantize(images, self.n_bits)
        eps = logistic_noise(levels.shape, generator, levels.device).to(
            levels.dtype
        )  # (B, C, H, W)
        u, logdet = self.transform(eps, levels)
        # σ(z) rounds to 1.0 in float32 for z ≳ 17; u must stay below 1 to stay in k's bin.
        u = u.clamp(max=1 - _TINY)
        return place_in_bin(levels, u, self.n_bits), logistic_log_prob(eps) - logdet


class GaussianNoise(nn.Module):
    """Noise augmentation: ``ỹ = (k + ½)/K + σ ε``, ``ε ~ N(0, I)``; ``σ`` on the ``[0, 1]`` pixel scale.

    ``log q`` is reported as 0, so :func:`~glowapp.flows.preprocess.bits_per_dim` gives the
    *noisy-image* bits/dim ``−(log p_σ(ỹ) − D log K) / (D ln 2)``: the density of the noisy
    image, on the scale of the discrete numbers but not comparable with them. ``ỹ`` may leave
    ``[0, 1)``, so the logit preprocessing cannot follow it (:class:`glowapp.ImageFlow` refuses).

    Args:
        n_bits: bits per sub-pixel (``K = 2**n_bits`` levels).
        sigma: the noise's standard deviation (TarFlow: 0.05 on ``[−1, 1]``, i.e. 0.025 here).
    """

    def __init__(self, n_bits: int, sigma: float) -> None:
        super().__init__()
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"the Gaussian noise's sigma must be > 0, got {sigma}")
        self.n_bits = n_bits
        self.sigma = float(sigma)

    def forward(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """uint8 or ``[0, 1]`` images ``[B, C, H, W]`` → ``(ỹ, 0)``: ``[B, C, H, W]``, ``[B]``."""
        centres = dequantize(images, self.n_bits, noise=False)
        noise = torch.randn(
            centres.shape, generator=generator, device=centres.device, dtype=centres.dtype
        )
        return centres + self.sigma * noise, centres.new_zeros(centres.shape[0])


def make_dequantization(
    kind: str,
    in_channels: int,
    n_bits: int,
    hidden: int = 32,
    steps: int = 4,
    sigma: float = 0.0,
) -> UniformDequantization | VariationalDequantization | GaussianNoise:
    """The dequantisation named ``kind``: ``"uniform"``, ``"variational"`` or ``"gaussian"``
    (noise of std ``sigma``)."""
    if kind == "uniform":
        return UniformDequantization(n_bits)
    if kind == "variational":
        return VariationalDequantization(in_channels, n_bits, hidden, steps)
    if kind == "gaussian":
        return GaussianNoise(n_bits, sigma)
    raise ValueError(f"dequantization must be one of {DEQUANTIZATIONS}, got {kind!r}")
