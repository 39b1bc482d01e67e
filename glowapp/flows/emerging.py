"""Emerging convolutions (Hoogeboom, van den Berg & Welling 2019): invertible k×k convolutions
built from two masked autoregressive convolutions, on ``[B, C, H, W]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glowapp.flows.base import Bijection, FlowSequential, at_least_float32, channel_linear


class AutoregressiveConv2d(Bijection):
    """A ``k×k`` convolution (zero padding, no bias) masked to be autoregressive in the order
    (raster pixel, channel) — or its reverse when ``reverse=True`` (Hoogeboom et al. 2019).

    Output ``(c, i, j)`` reads the inputs of the window's pixels before ``(i, j)`` in raster
    order (all channels), and at ``(i, j)`` itself channels ``c' < c`` plus its own channel with
    weight ``exp(log_diag[c]) > 0`` (the centre diagonal). The Jacobian is triangular in that
    order with the centre diagonal on its diagonal, at every pixel:

    log-det: ``H · W · Σ_c log_diag[c]``.

    inverse (sequential substitution): pixel ``(i, j)`` is ``C⁻¹ (y − K_off ⋆ x)`` at ``(i, j)``,
    where ``C`` is the triangular centre tap ``[C, C]`` and ``K_off`` the kernel without it, once
    every earlier pixel of its window is known. Pixels on one wavefront ``j + (p + 1)·i = t``
    (``p = k // 2``) depend only on earlier wavefronts, so they are solved together: ``T = (W − 1)
    + (p + 1)(H − 1) + 1`` steps of one full convolution each (with ``C⁻¹`` folded into
    ``K_off``), instead of ``H · W`` per-pixel solves (14×14, ``k = 3``: 40 steps instead of 196). The
    forward is one convolution, so the inverse costs ~``T`` forwards.
    """

    def __init__(self, channels: int, kernel_size: int = 3, reverse: bool = False) -> None:
        super().__init__()
        if channels < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"need channels >= 1 and an odd kernel_size, got {channels} and {kernel_size}"
            )
        k, p = kernel_size, kernel_size // 2
        self.padding, self.reverse = p, reverse
        # Small off-diagonal taps and a unit centre diagonal: the map starts near the identity.
        self.weight = nn.Parameter(0.01 * torch.randn(channels, channels, k, k))
        self.log_diag = nn.Parameter(torch.zeros(channels))
        centre = torch.zeros(k, k)
        centre[p, p] = 1
        # The window's pixels before its centre (p, p) in raster order.
        spatial = (torch.arange(k * k) < p * k + p).float().view(k, k)
        lower = torch.tril(torch.ones(channels, channels), -1)  # c' < c at the centre
        mask = spatial.expand(channels, channels, k, k) + lower[:, :, None, None] * centre
        self.register_buffer("centre", centre)
        self.register_buffer("mask", mask.flip(0, 1, 2, 3) if reverse else mask)

    def kernel(self) -> Tensor:
        """The masked kernel ``[C, C, k, k]`` with the centre diagonal ``exp(log_diag)``."""
        diag = torch.diag(self.log_diag.exp())[:, :, None, None] * self.centre
        return self.weight * self.mask + diag

    def _log_det(self, x: Tensor) -> Tensor:
        logdet = x.shape[2] * x.shape[3] * self.log_diag.sum().to(x.dtype)
        return logdet.expand(x.shape[0])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = at_least_float32(x)
        with torch.autocast(x.device.type, enabled=False):
            y = F.conv2d(x, self.kernel().to(x.dtype), padding=self.padding)
        return y, self._log_det(x)

    def _wavefront(self, h: int, w: int, device: torch.device) -> Tensor:
        """The step ``[H, W]`` at which each pixel is solved (earlier pixels first)."""
        ii = torch.arange(h, device=device).view(h, 1)
        jj = torch.arange(w, device=device).view(1, w)
        if self.reverse:
            ii, jj = h - 1 - ii, w - 1 - jj
        return jj + (self.padding + 1) * ii if self.padding else torch.zeros_like(ii * jj)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        y = at_least_float32(y)
        with torch.autocast(y.device.type, enabled=False):
            kernel = self.kernel().to(y.dtype)
            p = self.padding
            centre = kernel[:, :, p, p]  # (C, C), triangular
            eye = torch.eye(centre.shape[0], dtype=y.dtype, device=y.device)
            centre_inv = torch.linalg.solve_triangular(centre, eye, upper=self.reverse)
            # C⁻¹(y − K_off ⋆ x) = C⁻¹y − (C⁻¹K_off) ⋆ x: one convolution per step.
            off_centre = kernel * (1 - self.centre.to(y.dtype))
            solve_kernel = torch.einsum("cm,mnab->cnab", centre_inv, off_centre)
            target = channel_linear(y, centre_inv)
            front = self._wavefront(y.shape[2], y.shape[3], y.device)
            x = torch.zeros_like(y)
            for step in range(int(front.max()) + 1):
                solved = target - F.conv2d(x, solve_kernel, padding=p)
                x = torch.where(front == step, solved, x)
        return x, -self._log_det(y)


class EmergingConv2d(FlowSequential):
    """An invertible ``k×k`` convolution on ``[B, C, H, W]`` (Hoogeboom et al. 2019):
    ``K₂ ⋆ (K₁ ⋆ x)`` with ``K₁`` an :class:`AutoregressiveConv2d` in (raster pixel, channel)
    order and ``K₂`` one in the reverse order, so together every output reads the full ``k×k``
    window of every channel ("emerging": each factor is triangular, the composition is not; its
    receptive field, within ``(2k − 1)×(2k − 1)``, also takes in a few pixels beyond the window).

    log-det: ``H · W · (Σ log_diag₁ + Σ log_diag₂)`` — the masked kernels' centre diagonals.
    inverse: ``K₁⁻¹(K₂⁻¹(y))``, each by sequential substitution (see
    :class:`AutoregressiveConv2d`): ``2T`` convolutions with ``T = (W − 1) + (p + 1)(H − 1) + 1``,
    so sampling and the memory-saving backward (which inverts) are the slow direction.
    Starts near the identity; in Glow it is followed by a 1×1 convolution, as in the paper
    (``Glow(permutation="emerging")``).
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            [
                AutoregressiveConv2d(channels, kernel_size, reverse=False),
                AutoregressiveConv2d(channels, kernel_size, reverse=True),
            ]
        )
