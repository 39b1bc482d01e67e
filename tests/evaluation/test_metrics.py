"""FID and KID through torchmetrics in the shipped feature space: zero for a set against itself,
ranking real images below noise, and one clear line for sets too small for FID."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from glowapp.evaluation import FeatureExtractor, SampleQuality, check_set_size


def noise_images(n: int, seed: int = 0) -> Tensor:
    """Uniform random uint8 images ``[n, 1, 28, 28]``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator)


def test_a_set_against_itself_is_at_distance_zero(
    extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    images = real["test"][:256]
    quality = SampleQuality(extractor, images, len(images), batch_size=100)
    result = quality.score(images.split(100))
    assert abs(result.fid) < 1e-3, result
    # KID's unbiased MMD² of a set against itself is (2/n)(mean k(x, x') - mean k(x, x)) < 0:
    # O(1/n), far below the gap to noise.
    assert -0.1 * quality.score([noise_images(256)]).kid < result.kid < 0


def test_training_images_rank_far_below_noise(
    extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    quality = SampleQuality(extractor, real["test"], 256, batch_size=128)
    reference = quality.score(real["train"].split(128))
    noise = quality.score(noise_images(256).split(128))
    assert 0 < reference.fid < noise.fid / 10, (reference, noise)
    assert reference.kid < noise.kid / 10, (reference, noise)
    assert reference.kid_std >= 0 and noise.kid_std > 0


def test_kid_subsets_are_seeded(extractor: FeatureExtractor, real: dict[str, Tensor]) -> None:
    def kid(seed: int) -> tuple[float, float]:
        quality = SampleQuality(extractor, real["test"], 256, seed=seed)
        result = quality.score([real["train"]])
        return result.kid, result.kid_std

    assert kid(0) == kid(0)
    assert kid(0) != kid(1)


def test_batching_does_not_change_the_distances(
    extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    whole = SampleQuality(extractor, real["test"], 256, batch_size=512).score([real["train"]])
    batched = SampleQuality(extractor, real["test"], 256, batch_size=37)
    result = batched.score(real["train"].split(37))
    assert result.fid == pytest.approx(whole.fid, rel=1e-4)
    assert result.kid == pytest.approx(whole.kid, rel=1e-4)


@pytest.mark.parametrize("count", [1, 100, 128])
def test_too_few_images_for_fid_is_one_clear_line(extractor: FeatureExtractor, count: int) -> None:
    with pytest.raises(ValueError) as info:
        check_set_size(count, "samples", extractor)
    message = str(info.value)
    assert (
        f"{count} samples are too few for FID in the 128-dimensional fashion-mnist features"
        in message
    )
    assert "use at least 129" in message and "\n" not in message
    check_set_size(129, "samples", extractor)


def test_too_few_real_images_are_refused_before_any_work(extractor: FeatureExtractor) -> None:
    with pytest.raises(ValueError, match="100 real images are too few"):
        SampleQuality(extractor, noise_images(100), 256)


def test_another_number_of_images_than_announced_is_refused(
    extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    quality = SampleQuality(extractor, real["test"], 256)
    with pytest.raises(ValueError, match="expected 256 images to score, got 200"):
        quality.score([real["train"][:200]])
