"""Channel mixing: invertible 1×1 convolutions (Kingma & Dhariwal 2018, §3.2) and fixed permutations."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from glowapp.flows.base import (
    Bijection,
    at_least_float32,
    channel_linear,
    note_weight_writes,
    weight_writes,
    zero_logdet,
)


def random_orthogonal(num_channels: int, generator: torch.Generator | None = None) -> Tensor:
    """A random ``[C, C]`` orthogonal matrix (QR of a Gaussian matrix, sign-corrected)."""
    q, r = torch.linalg.qr(
        torch.randn(num_channels, num_channels, generator=generator, dtype=torch.float64)
    )
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


class InvertibleChannelMatrix(Bijection):
    """Shared machinery: ``y = W x`` at every pixel, with ``W`` built by :meth:`matrix`.

    forward:  ``y[:, :, i, j] = W @ x[:, :, i, j]``
    inverse:  ``x[:, :, i, j] = W⁻¹ @ y[:, :, i, j]``
    log-det:  ``H * W * log|det W|`` (negated on inverse)

    ``W``, ``W⁻¹`` and ``log|det W|`` are composed in float64 outside autocast, then cast to
    the input's dtype, so they stay exact under bf16/fp16 mixed precision. When gradients are
    off (evaluation, sampling) they are cached and reused until a parameter changes in place
    (tracked through the parameters' version counters and storage, and
    :func:`~glowapp.flows.base.weight_writes`), so a stale inverse is never used.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[str, tuple[tuple[int, ...], Tensor]] = {}

    def clear_cache(self) -> None:
        """Forget cached matrices (needed after writes through ``.data``, which keep version
        counters), and with them every inference-time fold (:func:`note_weight_writes`)."""
        self._cache.clear()
        note_weight_writes()

    def matrix(self) -> Tensor:  # pragma: no cover - abstract
        """``W`` as a float64 ``[C, C]`` tensor (differentiable)."""
        raise NotImplementedError

    def log_abs_det(self) -> Tensor:
        """``log|det W|`` as a float64 scalar (differentiable)."""
        return torch.linalg.slogdet(self.matrix())[1]

    def _memo(self, name: str, compute: Callable[[], Tensor]) -> Tensor:
        if torch.is_grad_enabled():
            return compute()
        key = (
            weight_writes(),
            *(p._version for p in self.parameters()),
            *(p.data_ptr() for p in self.parameters()),
        )
        hit = self._cache.get(name)
        if hit is None or hit[0] != key:
            hit = (key, compute())
            self._cache[name] = hit
        return hit[1]

    def _weight(self, inverse: bool, dtype: torch.dtype) -> Tensor:
        def compute() -> Tensor:
            with torch.autocast(self.device_type, enabled=False):
                w = self.matrix()
                w = torch.linalg.inv(w) if inverse else w
            return w.to(dtype)

        return self._memo(f"{'inv' if inverse else 'fwd'}-{dtype}", compute)

    def _logdet(self, x: Tensor) -> Tensor:
        def compute() -> Tensor:
            with torch.autocast(self.device_type, enabled=False):
                return self.log_abs_det()

        logdet = self._memo("logdet", compute).to(at_least_float32(x).dtype)
        return (x.shape[2] * x.shape[3] * logdet).expand(x.shape[0])

    @property
    def device_type(self) -> str:
        return next(self.parameters()).device.type

    def _mix(self, x: Tensor, inverse: bool) -> Tensor:
        # The main data path stays at (at least) float32 under autocast: only the coupling
        # networks run in reduced precision, so the flow remains invertible.
        x = at_least_float32(x)
        w = self._weight(inverse=inverse, dtype=x.dtype)
        with torch.autocast(self.device_type, enabled=False):
            return channel_linear(x, w)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._mix(x, inverse=False), self._logdet(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self._mix(y, inverse=True), -self._logdet(y)


class InvConv1x1(InvertibleChannelMatrix):
    """Invertible 1×1 convolution with an unconstrained weight ``W`` (random orthogonal init).

    ``log|det W|`` comes from ``slogdet`` (O(C³)), ``W⁻¹`` from ``inv`` in float64.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(random_orthogonal(num_channels).float())

    def matrix(self) -> Tensor:
        return self.weight.double()


class InvConv1x1LU(InvertibleChannelMatrix):
    """LU-decomposed invertible 1×1 convolution: ``W = P L (U + diag(sign · exp(log_s)))``.

    ``P`` is a fixed permutation, ``L`` unit lower-triangular, ``U`` strictly upper-triangular;
    ``log|det W| = sum(log_s)`` in O(C). Initialised from the LU factors of a random rotation.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        p, lower, upper = torch.linalg.lu(random_orthogonal(num_channels))
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(num_channels, num_channels), -1))
        self.lower = nn.Parameter(torch.tril(lower, -1).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(s.abs().log().float())

    def matrix(self) -> Tensor:
        eye = torch.eye(self.log_s.shape[0], dtype=torch.float64, device=self.log_s.device)
        mask = self.lower_mask.double()
        lower = self.lower.double() * mask + eye
        upper = self.upper.double() * mask.T + torch.diag(
            self.sign_s.double() * self.log_s.double().exp()
        )
        return self.perm.double() @ lower @ upper

    def log_abs_det(self) -> Tensor:
        return self.log_s.double().sum()


class ChannelPermutation(Bijection):
    """A fixed channel permutation ``y = x[:, perm]`` (RealNVP's reverse, or a random shuffle).

    inverse: ``x = y[:, argsort(perm)]``; log|det J| = 0.
    """

    def __init__(self, num_channels: int, mode: str = "reverse") -> None:
        super().__init__()
        if mode == "reverse":
            perm = torch.arange(num_channels - 1, -1, -1)
        elif mode == "shuffle":
            perm = torch.randperm(num_channels)
        else:
            raise ValueError(f"permutation mode must be 'reverse' or 'shuffle', got {mode!r}")
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    def matrix(self) -> Tensor:
        """The permutation as a float64 ``[C, C]`` matrix ``P`` with ``y = P x`` (row ``i`` is
        the unit vector of channel ``perm[i]``)."""
        eye = torch.eye(self.perm.shape[0], dtype=torch.float64, device=self.perm.device)
        return eye[self.perm]

    def log_abs_det(self) -> Tensor:
        """``log|det P| = 0`` as a float64 scalar."""
        return torch.zeros((), dtype=torch.float64, device=self.perm.device)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], zero_logdet(x)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y[:, self.inv_perm], zero_logdet(y)
