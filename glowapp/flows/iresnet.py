"""Invertible residual networks, i-ResNet (Behrmann et al. 2019), on ``[B, dim]``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glowapp.flows.base import Bijection, at_least_float32

LOGDETS = ("series", "exact")


class SpectralNormLinear(nn.Linear):
    """``y = W̃x + b`` with ``W̃ = W · min(1, c / σ̂(W))``, so ``‖W̃‖₂ ≤ c`` (Behrmann et al. 2019).

    ``σ̂`` is the largest singular value by power iteration (Miyato et al. 2018), started from
    the buffer ``u`` (the left singular vector estimate) and run on every call until ``σ̂``
    changes by less than ``16·eps`` relative (at most ``power_iterations`` steps), so the bound
    holds after any change of ``W`` (an optimizer step, a loaded state dict) up to the
    iteration's accuracy (``σ̂ ≤ σ``; the error shrinks like ``(σ₂/σ₁)^{2k}``). In training mode
    the final ``u`` is written back (the next call starts warm: one or two steps); in eval mode
    it is not, so every call computes the same ``W̃`` and ``forward`` and ``inverse`` agree
    exactly. ``σ̂ = uᵀWv`` with ``u, v`` held fixed, so gradients flow through ``W`` into it.
    """

    def __init__(
        self, in_features: int, out_features: int, lipschitz: float, power_iterations: int
    ) -> None:
        super().__init__(in_features, out_features)
        self.lipschitz = lipschitz
        self.power_iterations = power_iterations
        self.register_buffer("u", F.normalize(torch.randn(out_features), dim=0))

    def normalized_weight(self) -> Tensor:
        """``W̃`` ``[out, in]`` (in training mode, also refreshes the buffer ``u``)."""
        w = self.weight
        with torch.no_grad():
            u, sigma, tol = self.u.clone(), w.new_zeros(()), 16 * torch.finfo(w.dtype).eps
            for _ in range(self.power_iterations):
                v = F.normalize(w.T @ u, dim=0)
                wv = w @ v
                previous, sigma = sigma, wv.norm()
                u = wv / sigma.clamp_min(torch.finfo(w.dtype).tiny)
                if abs(float(sigma - previous)) <= tol * float(sigma):
                    break
            if self.training:
                self.u.copy_(u)
        sigma = u @ w @ v  # differentiable in W
        return w * (self.lipschitz / sigma.clamp_min(self.lipschitz))  # min(1, c/σ̂)


class InvertibleResidualBlock(Bijection):
    """``y = x + g(x)`` with ``Lip(g) < 1`` (Behrmann et al. 2019) on ``[B, dim]``.

    ``g = W₃ ∘ ELU ∘ W₂ ∘ ELU ∘ W₁`` (``dim → hidden → hidden → dim``), each ``Wₗ`` a
    :class:`SpectralNormLinear` with ``‖Wₗ‖₂ ≤ c = lipschitz`` and ELU 1-Lipschitz, so
    ``Lip(g) ≤ L = c³ < 1`` and ``x ↦ x + g(x)`` is invertible (Behrmann et al. Thm 1).
    ``J_g = W₃ D₂ W₂ D₁ W₁`` with ``Dₗ = diag(ELU'(hₗ))`` is computed in closed form: its
    vector-Jacobian products need no autograd, so both log-dets also work under ``no_grad``.

    log-det, ``log det(I + J_g)`` (positive determinant since ``‖J_g‖ < 1``):

    * ``"exact"``: ``slogdet(I + J_g)`` of the explicit ``[B, dim, dim]`` Jacobian — ``O(dim³)``
      per sample, for small ``dim`` and tests.
    * ``"series"`` (Behrmann et al. 2019): ``Σ_{k=1}^{n} (−1)^{k+1}/k · tr(J_g^k)`` with each trace
      estimated by Hutchinson, ``tr(A) ≈ vᵀAv`` with ``v ~ N(0, I)``, ``vᵀJ_g^k`` by ``k``
      vector-Jacobian products (``n = series_terms``; ``m = hutchinson_samples`` draws, averaged;
      the global torch RNG, so each call is a new draw). Its error has two parts:

      - bias (truncation): ``|E[series] − log det| = |Σ_{k>n} (−1)^{k+1} tr(J_g^k)/k|
        ≤ dim · Σ_{k>n} L^k/k ≤ dim · L^{n+1} / ((n + 1)(1 − L))`` (``|tr(J_g^k)| ≤ dim · L^k``;
        Behrmann et al. bound it by the tail sum); :meth:`bias_bound` gives the last form with
        ``L = c³`` (``L = c`` also bounds ``Lip(g)`` but gives a looser bound).
        ``c = 0.9``, ``n = 10``: ≤ 0.0104 · dim. ``J_g = −L·I`` comes within a factor 1.2–1.5
        of it; random blocks, with ``‖J_g‖`` well below ``L``, sit orders of magnitude below.
      - variance (Hutchinson): ``Var = 2‖sym(A_n)‖²_F / m`` with ``A_n = Σ_{k≤n} (−1)^{k+1}J_g^k/k``,
        at most ``2 · dim · log(1 − L)² / m`` (:meth:`variance_bound`); unbiased for the
        truncated series. tests/flows/test_iresnet.py measures both against ``"exact"``.

    inverse: the fixed point of ``x ↦ y − g(x)`` (a contraction with rate ``L``), iterated from
    ``x₀ = y`` until ``|x_{k+1} − x_k| ≤ 16·eps·(1 + |x_{k+1}|)`` elementwise, at most
    ``max_iterations`` times (error ``≈ L^k``: ~110 iterations for float64 at ``c = 0.9``), else
    :class:`RuntimeError`. Gradients flow through the iterations. Its log-det is minus the
    forward one at the solution (a new Hutchinson draw for ``"series"``).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        lipschitz: float = 0.9,
        logdet: str = "series",
        series_terms: int = 10,
        hutchinson_samples: int = 1,
        max_iterations: int = 1000,
        power_iterations: int = 100,
    ) -> None:
        super().__init__()
        if not 0 < lipschitz < 1:
            raise ValueError(
                f"lipschitz must be in (0, 1) for an invertible block, got {lipschitz}"
            )
        if logdet not in LOGDETS:
            raise ValueError(f"logdet must be one of {LOGDETS}, got {logdet!r}")
        if dim < 1 or hidden < 1 or series_terms < 1 or hutchinson_samples < 1:
            raise ValueError(
                "dim, hidden, series_terms and hutchinson_samples must be >= 1, got "
                f"{dim}, {hidden}, {series_terms}, {hutchinson_samples}"
            )
        self.dim = dim
        self.lipschitz = lipschitz
        self.logdet = logdet
        self.series_terms = series_terms
        self.hutchinson_samples = hutchinson_samples
        self.max_iterations = max_iterations
        sizes = [dim, hidden, hidden, dim]
        self.layers = nn.ModuleList(
            SpectralNormLinear(i, o, lipschitz, power_iterations)
            for i, o in zip(sizes[:-1], sizes[1:], strict=True)
        )

    def bias_bound(self) -> float:
        """``dim · L^{n+1} / ((n+1)(1 − L))``, ``L = lipschitz³``: the series' truncation bias bound."""
        lip, n = self.lipschitz**3, self.series_terms
        return self.dim * lip ** (n + 1) / ((n + 1) * (1 - lip))

    def variance_bound(self) -> float:
        """``2 · dim · log(1 − L)² / m``: a bound on the Hutchinson variance of the series."""
        return 2 * self.dim * math.log1p(-(self.lipschitz**3)) ** 2 / self.hutchinson_samples

    def _residual(self, x: Tensor, weights: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """``g(x)`` ``[B, dim]`` and the ELU slopes ``ELU'(hₗ)`` ``[B, hidden]`` of both hidden layers."""
        slopes = []
        h = x
        for weight, layer in zip(weights[:-1], self.layers[:-1], strict=True):
            h = F.linear(h, weight, layer.bias)
            # ELU' = 1 for h > 0, e^h below; the clamp keeps the unused branch finite.
            slopes.append(torch.where(h > 0, 1.0, h.clamp(max=0).exp()))
            h = F.elu(h)
        return F.linear(h, weights[-1], self.layers[-1].bias), slopes

    @staticmethod
    def _vjp(v: Tensor, weights: list[Tensor], slopes: list[Tensor]) -> Tensor:
        """``vᵀ J_g`` for ``v`` ``[..., B, dim]``: ``((v W₃ ⊙ D₂) W₂ ⊙ D₁) W₁``."""
        v = v @ weights[2]
        v = (v * slopes[1]) @ weights[1]
        return (v * slopes[0]) @ weights[0]

    def _log_det(self, x: Tensor, weights: list[Tensor], slopes: list[Tensor]) -> Tensor:
        """``log det(I + J_g(x))`` ``[B]``, exact or by the series (see the class)."""
        if self.logdet == "exact":
            jac = (weights[2] * slopes[1].unsqueeze(1)) @ (weights[1] * slopes[0].unsqueeze(1))
            jac = jac @ weights[0]  # (B, dim, dim)
            eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
            return torch.linalg.slogdet(eye + jac).logabsdet
        v = torch.randn((self.hutchinson_samples, *x.shape), dtype=x.dtype, device=x.device)
        w, total = v, x.new_zeros(x.shape[0])
        for k in range(1, self.series_terms + 1):
            w = self._vjp(w, weights, slopes)  # vᵀ J_g^k  (m, B, dim)
            total = total + (-1) ** (k + 1) / k * (w * v).sum(dim=-1).mean(dim=0)
        return total

    def _weights(self) -> list[Tensor]:
        return [layer.normalized_weight() for layer in self.layers]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = at_least_float32(x)
        weights = self._weights()
        g, slopes = self._residual(x, weights)
        return x + g, self._log_det(x, weights, slopes)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = at_least_float32(y)
        weights = self._weights()
        tol = 16 * torch.finfo(y.dtype).eps
        x = y
        for _ in range(self.max_iterations):
            x_next = y - self._residual(x, weights)[0]
            residual = (x_next - x).detach().abs()
            x = x_next
            # y − g(x) is rounded at the scale of |y| and |x| (= |y − g(x)|), whichever is larger.
            scale = 1 + torch.maximum(x.detach().abs(), y.detach().abs())
            if bool((residual <= tol * scale).all()):
                _, slopes = self._residual(x, weights)
                return x, -self._log_det(x, weights, slopes)
        raise RuntimeError(
            f"InvertibleResidualBlock.inverse did not converge: the fixed-point residual "
            f"max|x_k+1 − x_k| is {float(residual.max()):.3g} after max_iterations="
            f"{self.max_iterations} (tolerance {tol:.3g} relative); raise max_iterations, or lower "
            "lipschitz (contraction rate lipschitz³), and check the inputs for inf/NaN"
        )


class FlattenedResidualBlock(Bijection):
    """An :class:`InvertibleResidualBlock` on images: ``[B, C, H, W]`` seen as ``[B, C·H·W]``.

    forward:  ``y = unflatten(x̄ + g(x̄))`` with ``x̄ = flatten(x)`` (row-major ``C, H, W`` order,
    whatever the memory layout), ``Lip(g) < 1``; so every output pixel may depend on every input
    pixel (no convolutional locality or weight sharing: ``g``'s first and last layers are
    ``C·H·W × hidden`` dense matrices, so ``shape`` is fixed at construction).
    inverse:  the block's fixed-point inverse on the flattened ``y``, reshaped back.
    log-det:  the block's, ``log det(I + J_g(x̄))`` ``[B]`` (flattening is a permutation-free
    reshape: log-det 0), by its ``"series"`` estimate or ``"exact"`` (see the block).

    Outputs keep the input's memory layout (channels-last in, channels-last out). The block runs
    in float32 or float64 with autocast off: under bf16/fp16 the power iteration and the
    fixed-point inverse could not reach their tolerances and the Lipschitz bound, which
    invertibility rests on, would hold only to bf16 accuracy.
    ``options`` go to :class:`InvertibleResidualBlock` (``lipschitz``, ``logdet``, ...).
    """

    def __init__(self, shape: tuple[int, int, int], hidden: int, **options: object) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"shape must be (C, H, W) with positive sizes, got {shape}")
        self.block = InvertibleResidualBlock(math.prod(self.shape), hidden, **options)  # type: ignore[arg-type]

    def _flat(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"this block was built for [B, {', '.join(map(str, self.shape))}] inputs, got "
                f"{tuple(x.shape)}"
            )
        return x.reshape(x.shape[0], -1)

    @staticmethod
    def _like(t: Tensor, x: Tensor) -> Tensor:
        t = t.reshape(x.shape)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(x.device.type, enabled=False):
            y, logdet = self.block(self._flat(x))
        return self._like(y, x), logdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(y.device.type, enabled=False):
            x, logdet = self.block.inverse(self._flat(y))
        return self._like(x, y), logdet
