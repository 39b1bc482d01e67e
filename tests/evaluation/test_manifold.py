"""Precision and recall through k-NN manifolds, on toy feature sets with known answers, and
blocked distances that agree with a brute-force reference."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from glowapp.evaluation import manifold
from glowapp.evaluation.manifold import Manifold, precision_recall


def cluster(n: int, centre: float, seed: int, dim: int = 8) -> Tensor:
    """``n`` points of a unit Gaussian around ``centre · 1``."""
    generator = torch.Generator().manual_seed(seed)
    return centre + torch.randn(n, dim, generator=generator)


def scores(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    result = precision_recall(Manifold.of(real, k), Manifold.of(fake, k))
    return result.precision, result.recall


def test_identical_sets_have_precision_and_recall_one() -> None:
    points = cluster(200, 0.0, seed=0)
    assert scores(points, points.clone()) == (1.0, 1.0)


def test_far_apart_clusters_have_precision_and_recall_zero() -> None:
    assert scores(cluster(200, 0.0, seed=0), cluster(150, 100.0, seed=1)) == (0.0, 0.0)


def test_samples_of_one_mode_are_precise_but_recall_half_the_data() -> None:
    real = torch.cat([cluster(100, 0.0, seed=0), cluster(100, 100.0, seed=1)])
    fake = real[:100]  # every sample is a real point of the first mode
    assert scores(real, fake) == (1.0, 0.5)


def test_a_hand_computed_example() -> None:
    """Real points 0, 1, 2, 3 on a line, k = 1: every radius is 1, so 0.5 lies inside and 10 does
    not (precision ½). The fakes' radii are 9.5 each (their distance to each other), which
    covers every real point (recall 1)."""
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [10.0]])
    real_manifold = Manifold.of(real, k=1)
    assert torch.equal(real_manifold.radii, torch.ones(4, dtype=torch.float64))
    assert torch.equal(Manifold.of(fake, k=1).radii, torch.full((2,), 9.5, dtype=torch.float64))
    assert scores(real, fake, k=1) == (0.5, 1.0)


def test_the_kth_neighbour_excludes_the_point_itself() -> None:
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    radii = Manifold.of(points, k=2).radii
    assert radii.tolist() == [3.0, 2.0, 3.0, 6.0]


def test_blocked_distances_match_a_brute_force_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    real, fake = cluster(120, 0.0, seed=2), cluster(90, 0.7, seed=3)
    real_radii = torch.cdist(real.double(), real.double()).sort(dim=1).values[:, 3]
    fake_radii = torch.cdist(fake.double(), fake.double()).sort(dim=1).values[:, 3]
    cross = torch.cdist(fake.double(), real.double())  # [fake, real]
    precision = (cross <= real_radii + 1e-9).any(dim=1).double().mean().item()
    recall = (cross <= fake_radii[:, None] + 1e-9).any(dim=0).double().mean().item()
    assert 0.2 < precision < 1.0 and 0.2 < recall < 1.0  # a case that tests something
    whole = scores(real, fake)
    monkeypatch.setattr(manifold, "_BLOCK_ELEMENTS", 1000)  # blocks of 8 and 11 rows
    assert scores(real, fake) == whole == pytest.approx((precision, recall))
    assert torch.allclose(Manifold.of(real).radii, real_radii)


@pytest.mark.parametrize("k", [0, 5])
def test_k_must_leave_a_neighbour(k: int) -> None:
    with pytest.raises(
        ValueError, match=f"needs 1 <= k < the number of points \\(5\\), got k = {k}"
    ):
        Manifold.of(cluster(5, 0.0, seed=0), k)


def test_manifolds_of_different_spaces_are_refused() -> None:
    with pytest.raises(ValueError, match="same feature dimension and k"):
        precision_recall(Manifold.of(cluster(10, 0.0, 0, dim=4)), Manifold.of(cluster(10, 0, 0)))
