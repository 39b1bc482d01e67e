"""Masked autoregressive flows: MAF (Papamakarios et al. 2017) and IAF (Kingma et al. 2016).

Both are the same bijection on ``[B, dim]``: an elementwise transformer ``g`` whose parameters
for variable ``i`` come from a :class:`~glowapp.flows.made.MADE` fed with the *input* of the
map, so they depend only on the inputs before ``i`` in the order:

    forward:  ``y_i = g(x_i; θ_i(x_{<i}))`` for all ``i`` at once — ONE conditioner pass;
    inverse:  ``x_i = g⁻¹(y_i; θ_i(x_{<i}))``, each ``x_i`` needing the ones before it —
              ``dim`` conditioner passes;
    log-det:  ``Σ_i log g'(x_i; θ_i)`` (the Jacobian is triangular in the order).

They differ in which side is the data. MAF's forward is data → noise, so the density takes one
pass and sampling ``dim``; IAF's forward is noise → data, so sampling takes one pass and the
density ``dim``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from glowapp.flows.base import Bijection
from glowapp.flows.coupling import COUPLINGS, make_transform
from glowapp.flows.made import MADE


class MaskedAutoregressiveFlow(Bijection):
    """MAF (Papamakarios et al. 2017): ``forward`` is the density direction, data ``x`` → noise ``u``.

    ``u_i = g(x_i; θ_i(x_{<i}))`` in one MADE pass (``log p(x) = log N(u) + log-det``);
    ``inverse`` (sampling, noise → data) solves ``x_i = g⁻¹(u_i; θ_i(x_{<i}))`` in ``dim`` MADE
    passes: starting from ``x = 0``, pass ``k`` recomputes every ``x_i`` from the current ``x``, and
    after it the first ``k`` variables of the order are exact (each depends only on earlier ones).

    Args:
        dim: number of variables ``D``.
        hidden: width of MADE's hidden layers.
        transformer: ``g``: ``"affine"`` (``x·exp(s) + t`` with a soft-bounded ``s``, as the
            couplings' :class:`~glowapp.flows.coupling.AffineTransform`), ``"spline"``
            (rational-quadratic, Durkan et al. 2019:
            :class:`~glowapp.flows.spline.RationalQuadraticSpline`, the identity outside
            ``[−spline_bound, spline_bound]``) or ``"additive"`` (``x + t``).
        order: the autoregressive order (a permutation of ``range(dim)``: ``order[0]`` comes first);
            ``None`` draws one at random.
        hidden_layers: MADE's hidden layers.
        spline_bins, spline_bound: the spline's ``K`` bins and tail bound ``B``.

    Starts as the identity (MADE's output layer is zero).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        transformer: str = "affine",
        order: Sequence[int] | None = None,
        hidden_layers: int = 2,
        spline_bins: int = 8,
        spline_bound: float = 3.0,
    ) -> None:
        super().__init__()
        if transformer not in COUPLINGS:
            raise ValueError(f"transformer must be one of {COUPLINGS}, got {transformer!r}")
        self.transform = make_transform(transformer, spline_bins, spline_bound)
        self.made = MADE(dim, hidden, self.transform.params_per_dim, order, hidden_layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, ld = self.transform(x, self.made(x))  # (B, D), (B, D)
        return y, ld.sum(dim=1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = y.new_zeros(y.shape)
        for _ in range(y.shape[1]):
            x, ld = self.transform.inverse(y, self.made(x))
        return x, ld.sum(dim=1)


class InverseAutoregressiveFlow(MaskedAutoregressiveFlow):
    """IAF (Kingma et al. 2016): ``forward`` is the sampling direction, noise ``u`` → data ``x``.

    The same network as :class:`MaskedAutoregressiveFlow` used the other way round: the
    conditioner reads the noise, ``x_i = g(u_i; θ_i(u_{<i}))``, so ``forward`` samples in ONE MADE
    pass, while ``inverse`` — the density direction, ``log p(x) = log N(u) − log|det ∂x/∂u|`` =
    ``log N(u) + inverse log-det`` — needs ``dim`` passes (``u_i`` requires ``u_{<i}``). Fast to
    sample, slow to evaluate on data: the reverse of MAF. Same arguments as MAF.
    """
