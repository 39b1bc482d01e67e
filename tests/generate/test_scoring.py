"""glowapp.generate.scoring: bits/dim of images, and the checks of its arguments."""

from __future__ import annotations

import re

import pytest
import torch
from helpers.generation import tiny_glow
from helpers.trained import Trained

from glowapp.generate import inpaint, log_prob_to_bits_per_dim, score
from glowapp.module import GlowModule

pytestmark = pytest.mark.usefixtures("single_thread")


def test_score_prefers_real_images_to_noise(module: GlowModule, trained_model: Trained) -> None:
    real = trained_model.test_images(8)
    noise = torch.randint(
        0, 256, real.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    bpd_real, bpd_noise = score(module, real), score(module, noise)
    assert bpd_real.shape == (8,)
    assert bpd_real.max() < bpd_noise.min()
    assert torch.equal(score(module, real), bpd_real)  # bin centres: deterministic
    averaged = score(module, real, noise_samples=4, seed=0)
    assert torch.equal(averaged, score(module, real, noise_samples=4, seed=0))
    assert (averaged - bpd_real).abs().max() < 0.5  # the two estimates of the same quantity


def test_log_prob_to_bits_per_dim_matches_score_at_the_bin_centres(module: GlowModule) -> None:
    images = torch.full((2, 1, 28, 28), 100, dtype=torch.uint8)
    # Zero iterations: the log p of the result is that of the images themselves (mask-free).
    result = inpaint(module, images, torch.zeros(28, 28, dtype=torch.bool), iterations=0)
    bpd = log_prob_to_bits_per_dim(module, result.log_prob[-1])
    torch.testing.assert_close(bpd, score(module, images), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "noise_samples", "message"),
    [
        ((2, 1, 28, 28), -1, "noise samples must be >= 0 (0: the bin centres), got -1"),
        ((2, 3, 28, 28), 0, "expected images of shape [B, 1, 28, 28]"),
    ],
)
def test_scoring_arguments_are_checked(
    shape: tuple[int, ...], noise_samples: int, message: str
) -> None:
    images = torch.zeros(shape, dtype=torch.uint8)
    with pytest.raises(ValueError, match=re.escape(message)):
        score(tiny_glow(), images, noise_samples)
