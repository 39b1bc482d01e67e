"""The 2-D data sets: shapes, determinism from the seed, and the shape of each set."""

from __future__ import annotations

import pytest
import torch

from glowapp.playground.datasets import DATASETS, checkerboard, rings, sample_dataset


@pytest.mark.parametrize("name", list(DATASETS))
def test_points_are_float32_pairs_inside_the_plotting_window(name: str) -> None:
    x = sample_dataset(name, 2000, seed=0)
    assert x.shape == (2000, 2)
    assert x.dtype == torch.float32
    assert bool(torch.isfinite(x).all())
    assert float(x.abs().max()) < 4.5  # the playground's grids cover [−5, 5]²


@pytest.mark.parametrize("name", list(DATASETS))
def test_a_seed_gives_the_same_points_and_another_seed_others(name: str) -> None:
    torch.manual_seed(123)  # the global RNG must play no part
    a = sample_dataset(name, 500, seed=7)
    torch.manual_seed(456)
    b = sample_dataset(name, 500, seed=7)
    assert torch.equal(a, b)
    assert not torch.allclose(a, sample_dataset(name, 500, seed=8))


def test_checkerboard_points_lie_on_the_dark_squares_evenly() -> None:
    x = checkerboard(40_000, torch.Generator().manual_seed(0))
    assert float(x.abs().max()) <= 2.0
    cells = torch.floor(x + 2).long()  # (column, row) of the unit square holding each point
    assert bool(((cells[:, 0] + cells[:, 1]) % 2 == 0).all())
    counts = torch.bincount(cells[:, 1] * 4 + cells[:, 0], minlength=16).float()
    dark = counts[counts > 0]
    assert dark.numel() == 8
    assert float((dark / dark.mean() - 1).abs().max()) < 0.06  # uniform over the 8 squares


def test_checkerboard_rejects_an_odd_board() -> None:
    with pytest.raises(ValueError, match="even number of squares"):
        checkerboard(10, torch.Generator(), squares=3)


def test_rings_are_uniform_along_their_length() -> None:
    radii = (1.0, 2.0, 3.0)
    x = rings(60_000, torch.Generator().manual_seed(0), radii=radii, noise=0.01)
    ring = torch.round(x.norm(dim=1)).long()
    assert set(ring.tolist()) == {1, 2, 3}
    share = torch.bincount(ring, minlength=4)[1:].float() / x.shape[0]
    assert torch.allclose(share, torch.tensor(radii) / sum(radii), atol=0.01)  # ∝ circumference


def test_two_moons_and_pinwheel_are_centred() -> None:
    for name in ("moons", "pinwheel"):
        mean = sample_dataset(name, 20_000, seed=0).mean(dim=0)
        assert float(mean.abs().max()) < 0.1, name


def test_unknown_data_set_names_the_choices() -> None:
    with pytest.raises(ValueError, match="moons"):
        sample_dataset("spirals", 10, seed=0)
