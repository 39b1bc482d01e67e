"""glowapp.generate.sampling: temperatures, fixed noise, and the checks of their arguments."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers.generation import tiny_glow

from glowapp.generate import draw_noise, sample_grid, sample_with_noise
from glowapp.module import GlowModule

pytestmark = pytest.mark.usefixtures("single_thread")


def test_zero_temperature_is_deterministic_and_decodes_zero_latents(module: GlowModule) -> None:
    zeros = [torch.zeros(4, *shape) for shape in module.flow.latent_shapes()]
    mode = module.decode(zeros)
    a = sample_grid(module, [0.0], 4, seed=0)[0]
    b = sample_grid(module, [0.0], 4, seed=1)[0]
    assert torch.equal(a, mode) and torch.equal(b, mode)
    assert torch.equal(module.sample(4, temperature=0.0), mode)


def test_sample_grid_reuses_one_noise_draw_across_temperatures(module: GlowModule) -> None:
    grid = sample_grid(module, [0.0, 0.7, 1.0], 6, seed=3)
    assert grid.shape == (3, 6, 1, 28, 28)
    assert grid.min() >= 0 and grid.max() <= 1
    # The same seed gives what GlowModule.sample gives, temperature by temperature.
    for row, temperature in zip(grid, [0.0, 0.7, 1.0], strict=True):
        expected = module.sample(6, temperature, torch.Generator().manual_seed(3))
        assert torch.equal(row, expected)
    assert not torch.equal(grid[1], grid[2])


def test_per_level_temperature_scales_each_prior_std(module: GlowModule) -> None:
    noise = draw_noise(module, 256, seed=0)
    temperatures = (0.5, 1.0)  # finest level at half the std, top level at full std
    latents = [t * eps for t, eps in zip(temperatures, noise, strict=True)]
    # In float64: a briefly trained Glow sends a few prior draws to |x| ~ 1e5, where a float32
    # round trip keeps only a few digits; the temperatures are what is tested here.
    flow = copy.deepcopy(module.flow).double()
    with torch.no_grad():
        recovered, _ = flow.encode(flow.decode([z.double() for z in latents]))
    for level, (t, eps, back) in enumerate(zip(temperatures, noise, recovered, strict=True)):
        # Decoding then encoding gives back T·ε: each level's std is scaled by its own T.
        torch.testing.assert_close(back.float(), t * eps, atol=1e-5, rtol=1e-5)
        assert back.std().item() == pytest.approx(t, rel=0.05), f"level {level}"
    # Scalar T is T at every level; the per-level form feeds the same decoder.
    images = sample_with_noise(module, noise, [temperatures, (0.7, 0.7), 0.7])
    assert torch.equal(images[0], module.decode(latents))
    assert torch.equal(images[1], images[2])


@pytest.mark.parametrize(
    ("temperatures", "n", "seed", "message"),
    [
        ([0.7], 0, 0, "the number of samples must be at least 1, got 0"),
        ([-0.5], 2, 0, "temperature must be a finite number >= 0, got -0.5"),
        ([0.7, math.nan], 2, 0, "temperature must be a finite number >= 0, got nan"),
        ([(0.5, math.inf)], 2, 0, "temperature must be a finite number >= 0, got inf"),
        ([(0.5, 0.5, 0.5)], 2, 0, "expected one temperature per level (2), got 3"),
        ([], 2, 0, "give at least one temperature"),
        ([0.7], 2, 2**64, f"seed must be an integer in [-2**63, 2**64), got {2**64}"),
    ],
)
def test_sampling_arguments_are_checked(
    temperatures: list, n: int, seed: int, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        sample_grid(tiny_glow(), temperatures, n, seed=seed)
    assert str(info.value) == message
