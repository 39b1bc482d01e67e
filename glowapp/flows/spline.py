"""Monotonic rational-quadratic spline transform (Durkan et al. 2019, Neural Spline Flows).

Used inside a coupling (``coupling="spline"``): the conditioner network outputs, per transformed
element, the ``3K − 1`` parameters of a monotonic spline on ``[−B, B]`` with ``K`` bins; outside
the interval the map is the identity (linear tails).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from glowapp.flows.base import ElementwiseTransform, at_least_float32


def _gather(values: Tensor, index: Tensor) -> Tensor:
    """``values[..., index]`` for a per-element bin index ``[...]`` → ``[...]``."""
    return values.gather(-1, index.unsqueeze(-1)).squeeze(-1)


class RationalQuadraticSpline(ElementwiseTransform):
    """Monotonic rational-quadratic spline with ``K`` bins on ``[−B, B]``, identity outside.

    Parameters (``P = 3K − 1`` per element, raw conditioner outputs): ``K`` bin widths and ``K``
    bin heights (softmax, each at least ``min_bin``, scaled to ``2B``), and ``K − 1`` derivatives
    at the interior knots (``min_derivative + softplus(·)``). The derivative at ``±B`` is fixed to
    1, so the spline joins the identity tails with a continuous first derivative.

    forward (Durkan et al. 2019, eq. 4): for ``x`` in bin ``k`` with knots ``(x_k, y_k)``, width
    ``w``, height ``h``, slope ``s = h/w``, knot derivatives ``δ_k, δ_{k+1}`` and
    ``ξ = (x − x_k)/w ∈ [0, 1]``,

    ``y = y_k + h·[s ξ² + δ_k ξ(1 − ξ)] / [s + (δ_{k+1} + δ_k − 2s) ξ(1 − ξ)]``;

    log-det: ``log g'(x) = log(s²[δ_{k+1} ξ² + 2s ξ(1 − ξ) + δ_k (1 − ξ)²]) − 2 log(denominator)``;

    inverse: ``ξ`` is the root in ``[0, 1]`` of the quadratic ``aξ² + bξ + c = 0`` with
    ``a = h(s − δ_k) + (y − y_k)(δ_{k+1} + δ_k − 2s)``, ``b = h δ_k − (y − y_k)(δ_{k+1} + δ_k − 2s)``,
    ``c = −s (y − y_k)``, taken as ``ξ = 2c / (−b − √(b² − 4ac))`` (no cancellation); its log-det
    is ``−log g'(x)``. Outside ``[−B, B]``: ``y = x``, log-det 0.

    Zero parameters give uniform bins and unit derivatives (the softplus is shifted so that
    ``min_derivative + softplus(0 + shift) = 1``), i.e. exactly the identity, so a zero-initialised
    coupling starts as the identity like the affine one.

    Why ``B = 3`` by default: the coupling's inputs come out of ActNorm (unit variance per channel
    at initialisation), so about 99.7% of them fall in ``[−3, 3]`` and get the flexible part,
    while the ``K = 8`` bins keep a resolution of ~0.75 where the data is; a larger ``B`` spends
    bins on rarely visited regions, a smaller one leaves more mass on the identity tails.
    """

    def __init__(
        self,
        bins: int = 8,
        tail_bound: float = 3.0,
        min_bin: float = 1e-3,
        min_derivative: float = 1e-3,
    ) -> None:
        super().__init__()
        if bins < 1:
            raise ValueError(f"a spline needs at least 1 bin, got bins={bins}")
        if not tail_bound > 0:
            raise ValueError(f"the spline's tail bound must be positive, got {tail_bound}")
        if not 0 <= min_bin * bins < 1:
            raise ValueError(f"min_bin * bins must be in [0, 1), got {min_bin} * {bins}")
        if not 0 <= min_derivative < 1:
            raise ValueError(f"min_derivative must be in [0, 1), got {min_derivative}")
        self.bins = bins
        self.tail_bound = float(tail_bound)
        self.min_bin = min_bin
        self.min_derivative = min_derivative
        # softplus(shift) = 1 − min_derivative: zero parameters give derivative 1.
        self.derivative_shift = math.log(math.expm1(1.0 - min_derivative))
        self.params_per_dim = 3 * bins - 1

    def _knots(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Knot positions ``x_k``, ``y_k`` and derivatives ``δ_k``, each ``[B, C, H, W, K + 1]``."""
        params = at_least_float32(params).movedim(2, -1)  # (B, C, H, W, 3K − 1)
        k, bound = self.bins, self.tail_bound
        raw_w, raw_h, raw_d = params.split([k, k, k - 1], dim=-1)

        def knots(raw: Tensor) -> Tensor:
            sizes = self.min_bin + (1 - self.min_bin * k) * F.softmax(raw, dim=-1)
            edges = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))  # 0 … 1 (up to rounding)
            edges = 2 * bound * edges - bound
            # Pin the ends exactly, so bins tile [−B, B] and the tails meet them.
            edges[..., 0], edges[..., -1] = -bound, bound
            return edges

        derivatives = self.min_derivative + F.softplus(raw_d + self.derivative_shift)
        derivatives = F.pad(derivatives, (1, 1), value=1.0)  # δ = 1 at ±B
        return knots(raw_w), knots(raw_h), derivatives

    @staticmethod
    def _bin(
        knots: Tensor, values: Tensor, xk: Tensor, yk: Tensor, dk: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Geometry of the bin each of ``values`` (in ``[−B, B]``) falls in among ``knots``
        (``xk`` for the forward map, ``yk`` for the inverse).

        Returns ``x_k, y_k``, width ``w``, height ``h`` and knot derivatives ``δ_k, δ_{k+1}``,
        each ``[B, C, H, W]``.
        """
        # The number of interior knots ≤ v is the bin index in 0..K−1.
        index = (values.unsqueeze(-1) >= knots[..., 1:-1]).sum(dim=-1)
        x0, y0 = _gather(xk, index), _gather(yk, index)
        w, h = _gather(xk, index + 1) - x0, _gather(yk, index + 1) - y0
        return x0, y0, w, h, _gather(dk, index), _gather(dk, index + 1)

    @staticmethod
    def _log_derivative(xi: Tensor, s: Tensor, d0: Tensor, d1: Tensor) -> Tensor:
        t = xi * (1 - xi)
        numerator = s * s * (d1 * xi * xi + 2 * s * t + d0 * (1 - xi) ** 2)
        denominator = s + (d1 + d0 - 2 * s) * t
        return numerator.log() - 2 * denominator.log()

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        xk, yk, dk = self._knots(params)
        x = at_least_float32(x)
        inside = (x >= -self.tail_bound) & (x <= self.tail_bound)
        # The tails (handled by the last `where`) are replaced by 0, a safe point of the spline, so
        # they never reach its math; unlike a clamp this keeps the gradient at x = ±B.
        xc = torch.where(inside, x, torch.zeros_like(x))
        x0, y0, w, h, d0, d1 = self._bin(xk, xc, xk, yk, dk)
        s = h / w
        xi = (xc - x0) / w
        t = xi * (1 - xi)
        y = y0 + h * (s * xi * xi + d0 * t) / (s + (d1 + d0 - 2 * s) * t)
        log_d = self._log_derivative(xi, s, d0, d1)
        return torch.where(inside, y, x), torch.where(inside, log_d, torch.zeros_like(log_d))

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        xk, yk, dk = self._knots(params)
        y = at_least_float32(y)
        inside = (y >= -self.tail_bound) & (y <= self.tail_bound)
        yc = torch.where(inside, y, torch.zeros_like(y))
        x0, y0, w, h, d0, d1 = self._bin(yk, yc, xk, yk, dk)
        s = h / w
        dy = yc - y0
        curvature = d1 + d0 - 2 * s
        a = h * (s - d0) + dy * curvature
        b = h * d0 - dy * curvature
        c = -s * dy
        discriminant = (b * b - 4 * a * c).clamp_min(0)
        xi = 2 * c / (-b - discriminant.sqrt())
        x = x0 + xi * w
        log_d = -self._log_derivative(xi, s, d0, d1)
        return torch.where(inside, x, y), torch.where(inside, log_d, torch.zeros_like(log_d))
