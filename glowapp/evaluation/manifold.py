"""Precision and recall of a generated set against a real one, through k-nearest-neighbour
manifolds in a feature space (Kynkäänniemi et al. 2019, "Improved precision and recall metric
for assessing generative models").

The manifold of a feature set ``Φ`` is the union of balls, one around each ``φ ∈ Φ`` with the
radius ``r_k(φ) = ‖φ − NN_k(φ, Φ)‖``, the distance to its k-th nearest neighbour in ``Φ`` (itself
excluded). A point is inside it when it lies in at least one ball:

    f(φ, Φ) = 1  if  ∃ φ' ∈ Φ:  ‖φ − φ'‖ ≤ r_k(φ'),  else 0.

    precision = (1/|Φ_g|) Σ_{φ ∈ Φ_g} f(φ, Φ_r)   — how many samples look real;
    recall    = (1/|Φ_r|) Σ_{φ ∈ Φ_r} f(φ, Φ_g)   — how much of the real data the samples cover.

Both lie in ``[0, 1]`` and are 1 for identical sets. Distances are computed in float64, a block
of rows at a time (``‖a‖² + ‖b‖² − 2 aᵀb``), so 10,000 × 10,000 pairs need about 32 MB at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

__all__ = ["DEFAULT_K", "Manifold", "PrecisionRecall", "precision_recall"]

DEFAULT_K = 3
"""Neighbours per radius: the paper's choice."""

_BLOCK_ELEMENTS = 1 << 22
"""Distances held at once (float64: 32 MB)."""


@dataclass(frozen=True)
class PrecisionRecall:
    """Share of generated points inside the real manifold, and of real points inside the
    generated one."""

    precision: float
    recall: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _block_rows(columns: int) -> int:
    """Rows per block of distances to ``columns`` points: ``⌊_BLOCK_ELEMENTS / columns⌋`` (≥ 1)."""
    return max(1, _BLOCK_ELEMENTS // columns)


def _squared_distances(a: Tensor, b: Tensor, b_norms: Tensor) -> Tensor:
    """``‖a_i − b_j‖²`` ``[len(a), len(b)]`` of float64 rows, given ``‖b_j‖²`` ``[len(b)]``."""
    return ((a * a).sum(1, keepdim=True) + b_norms - 2.0 * a @ b.T).clamp_min_(0.0)


@dataclass(frozen=True)
class Manifold:
    """The k-NN manifold of ``points`` ``[N, F]`` (float64): each point's squared radius
    ``r_k(φ)²`` ``[N]``; build one with :meth:`of`."""

    points: Tensor
    squared_radii: Tensor
    k: int

    @classmethod
    def of(cls, features: Tensor, k: int = DEFAULT_K) -> Manifold:
        """The manifold of ``features`` ``[N, F]``: squared distance of each point to its k-th
        nearest neighbour among the others.

        Raises:
            ValueError: not a ``[N, F]`` tensor, or ``k`` outside ``1..N−1``.
        """
        if features.ndim != 2:
            raise ValueError(f"expected features of shape [N, F], got {tuple(features.shape)}")
        n = len(features)
        if not 1 <= k < n:
            raise ValueError(
                f"the k-NN manifold needs 1 <= k < the number of points ({n}), got k = {k}"
            )
        points = features.detach().to("cpu", torch.float64)
        norms = (points * points).sum(1)
        radii = []
        step = _block_rows(n)
        for start in range(0, n, step):
            block = _squared_distances(points[start : start + step], points, norms)
            rows = torch.arange(len(block))
            block[rows, rows + start] = torch.inf  # not its own neighbour
            radii.append(block.topk(k, dim=1, largest=False).values[:, k - 1])
        return cls(points, torch.cat(radii), k)

    @property
    def radii(self) -> Tensor:
        """``r_k(φ)`` ``[N]``: distance of each point to its k-th nearest neighbour."""
        return self.squared_radii.sqrt()


def precision_recall(real: Manifold, fake: Manifold) -> PrecisionRecall:
    """Precision (fake points in the real manifold) and recall (real points in the fake one).

    One pass over the ``[N_fake, N_real]`` distances, a block of fake rows at a time: a fake row
    is inside when some distance is ≤ that real point's radius (a column test); a real column is
    covered when some fake row of any block is within the fake point's radius (a row test).

    Raises:
        ValueError: manifolds of different feature dimensions or different ``k``.
    """
    if real.points.shape[1] != fake.points.shape[1] or real.k != fake.k:
        raise ValueError(
            f"manifolds to compare need the same feature dimension and k; got "
            f"{real.points.shape[1]}-d with k = {real.k} and {fake.points.shape[1]}-d with "
            f"k = {fake.k}"
        )
    real_norms = (real.points * real.points).sum(1)
    inside = torch.zeros(len(fake.points), dtype=torch.bool)
    covered = torch.zeros(len(real.points), dtype=torch.bool)
    step = _block_rows(len(real.points))
    for start in range(0, len(fake.points), step):
        stop = start + step
        distances = _squared_distances(fake.points[start:stop], real.points, real_norms)
        inside[start:stop] = (distances <= real.squared_radii).any(dim=1)
        covered |= (distances <= fake.squared_radii[start:stop, None]).any(dim=0)
    return PrecisionRecall(float(inside.double().mean()), float(covered.double().mean()))
