"""The flows of the 2-D playground, each a :class:`VectorFlow` (base ``N(0, I)``).

Orientation decides which direction is cheap (``to_noise.forward`` is the density direction):

* planar, radial: ``forward`` is noise → data (the reverse-KL direction, closed form), so they
  are wrapped in :class:`~glowapp.flows.Inverse`; their density needs the numerical inverse.
* MAF: ``forward`` is data → noise, one MADE pass; sampling takes ``dim`` passes per layer.
* IAF: ``forward`` is noise → data, one pass; wrapped in ``Inverse``, so the density takes
  ``dim`` passes per layer.
* RealNVP (affine :class:`~glowapp.flows.VectorCoupling`): ``forward`` is data →
  noise, one pass each way.
* i-ResNet: ``forward`` is data → noise (one pass plus the log-det), sampling by fixed-point
  iteration (tens of passes per block).

Stacked autoregressive layers alternate the natural and the reversed order, couplings alternate
the conditioning half, so every variable is transformed given every other.
"""

from __future__ import annotations

from collections.abc import Callable

from glowapp.flows import (
    Bijection,
    FlowSequential,
    Inverse,
    InverseAutoregressiveFlow,
    InvertibleResidualBlock,
    MaskedAutoregressiveFlow,
    PlanarFlow,
    RadialFlow,
    VectorCoupling,
)
from glowapp.playground.flow import VectorFlow

HIDDEN = 64
LAYERS = 5
# The spline transformers' interval [−B, B]: the data sets lie inside [−4, 4]² (the default B = 3
# leaves their edges on the identity tails, and the fit piles density against ±3).
SPLINE_BOUND = 4.0


def _order(dim: int, layer: int) -> list[int]:
    """``0 … dim−1`` for even layers, reversed for odd ones."""
    order = list(range(dim))
    return order[::-1] if layer % 2 else order


def energy_flow(kind: str, length: int, dim: int = 2) -> VectorFlow:
    """``length`` planar or radial layers (``kind`` ``"planar"`` | ``"radial"``) from noise to data."""
    layers: dict[str, type[Bijection]] = {"planar": PlanarFlow, "radial": RadialFlow}
    if kind not in layers:
        raise ValueError(f"kind must be one of {sorted(layers)}, got {kind!r}")
    if length < 1:
        raise ValueError(f"a flow needs at least one layer, got length={length}")
    return VectorFlow(Inverse(FlowSequential([layers[kind](dim) for _ in range(length)])), dim)


def maf(
    dim: int, transformer: str = "affine", layers: int = LAYERS, hidden: int = HIDDEN
) -> VectorFlow:
    """A stack of MAF layers (density in one pass per layer, sampling in ``dim``)."""
    stack = [
        MaskedAutoregressiveFlow(
            dim, hidden, transformer, order=_order(dim, i), spline_bound=SPLINE_BOUND
        )
        for i in range(layers)
    ]
    return VectorFlow(FlowSequential(stack), dim)


def iaf(
    dim: int, transformer: str = "affine", layers: int = LAYERS, hidden: int = HIDDEN
) -> VectorFlow:
    """A stack of IAF layers (sampling in one pass per layer, density in ``dim``)."""
    stack = [
        InverseAutoregressiveFlow(dim, hidden, transformer, order=_order(dim, i))
        for i in range(layers)
    ]
    return VectorFlow(Inverse(FlowSequential(stack)), dim)


def realnvp(dim: int, layers: int = 2 * LAYERS, hidden: int = HIDDEN) -> VectorFlow:
    """Affine couplings alternating the conditioning half (one pass each way)."""
    stack = [VectorCoupling(dim, hidden, "affine", swap=i % 2 == 1) for i in range(layers)]
    return VectorFlow(FlowSequential(stack), dim)


def iresnet(dim: int, blocks: int = 6, hidden: int = HIDDEN) -> VectorFlow:
    """i-ResNet blocks ``x + g(x)``, ``Lip(g) ≤ 0.9³``: density by the power-series log-det
    (Hutchinson, as trained by Behrmann et al.), sampling by fixed-point iteration per block.

    Six blocks, not ten like the couplings: a training step costs ~10 ms per block on one CPU
    thread (ten series terms of vector-Jacobian products), ~10× a coupling's."""
    stack = [InvertibleResidualBlock(dim, hidden, logdet="series") for _ in range(blocks)]
    return VectorFlow(FlowSequential(stack), dim)


def use_exact_logdet(flow: VectorFlow) -> VectorFlow:
    """Switch every i-ResNet block of ``flow`` to the exact ``slogdet`` log-det (for evaluating a
    fitted flow at small ``dim``: no estimator noise in test likelihoods and grid integrals);
    other layers are untouched. Returns ``flow``."""
    for module in flow.modules():
        if isinstance(module, InvertibleResidualBlock):
            module.logdet = "exact"
    return flow


DENSITY_FLOWS: dict[str, Callable[[int], VectorFlow]] = {
    "MAF (affine)": lambda dim: maf(dim, "affine"),
    "MAF (spline)": lambda dim: maf(dim, "spline"),
    "IAF": lambda dim: iaf(dim, "affine"),
    "RealNVP": realnvp,
    "i-ResNet": iresnet,
}


def density_flow(name: str, dim: int = 2) -> VectorFlow:
    """The maximum-likelihood flow called ``name`` (a key of :data:`DENSITY_FLOWS`) on ``dim``."""
    if name not in DENSITY_FLOWS:
        raise ValueError(f"unknown flow {name!r}: choose one of {list(DENSITY_FLOWS)}")
    return DENSITY_FLOWS[name](dim)
