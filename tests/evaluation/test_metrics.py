"""FID and KID through torchmetrics, precision and recall, in the shipped feature space: zero
distance and full precision/recall for a set against itself, real images ranking far from
noise, every image through the extractor once, and one clear line for sets too small."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from glowapp.evaluation import FeatureExtractor, SampleQuality, check_set_size
from glowapp.evaluation.metrics import KID_SUBSETS


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
    assert result.precision == 1.0 and result.recall == 1.0


@pytest.mark.filterwarnings("ignore:.*will save all extracted features")
def test_training_images_rank_far_below_noise(
    extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    quality = SampleQuality(extractor, real["test"], 256, batch_size=128)
    reference = quality.score(real["train"].split(128))
    noise = quality.score(noise_images(256).split(128))
    assert 0 < reference.fid < noise.fid / 10, (reference, noise)
    assert reference.kid < noise.kid / 10, (reference, noise)
    # KID's mean and std over the subsets are torchmetrics' own, on the same seeded subsets.
    direct = KernelInceptionDistance(
        feature=extractor.network, subsets=KID_SUBSETS, subset_size=256
    )
    direct.update(real["test"], real=True)
    direct.update(real["train"], real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # SampleQuality's default seed
        kid, kid_std = (float(v) for v in direct.compute())
    assert reference.kid == pytest.approx(kid, rel=1e-3) and reference.kid_std > 0
    assert reference.kid_std == pytest.approx(kid_std, rel=1e-3) and noise.kid_std > 0
    assert reference.precision > 0.8 and reference.recall > 0.6, reference
    # Noise covers none of the data. Its features collapse to a small cluster that a few real
    # outliers' large k-NN balls happen to contain: k-NN precision is outlier-sensitive (Naeem et
    # al. 2020), so it only ranks the noise below the training images here.
    assert noise.recall == 0.0 and noise.precision < reference.precision, noise


def test_each_image_is_extracted_once_and_fid_is_torchmetrics_own(
    extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    seen = []
    hook = extractor.network.register_forward_hook(lambda _, args, out: seen.append(len(out)))
    try:
        quality = SampleQuality(extractor, real["test"], 256, batch_size=100)
        result = quality.score(real["train"].split(100))
    finally:
        hook.remove()
    assert sum(seen) == len(real["test"]) + 256
    direct = FrechetInceptionDistance(feature=extractor.network)
    direct.update(real["test"], real=True)
    direct.update(real["train"], real=False)
    assert result.fid == pytest.approx(float(direct.compute()), rel=1e-4)


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


@pytest.mark.parametrize("k", [0, 256])
def test_a_manifold_k_without_neighbours_is_refused(
    extractor: FeatureExtractor, real: dict[str, Tensor], k: int
) -> None:
    with pytest.raises(
        ValueError, match=f"need 1 <= k < the number of images in each set \\(256\\), got k = {k}"
    ):
        SampleQuality(extractor, real["test"], 256, k=k)


def test_another_number_of_images_than_announced_is_refused(
    extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    quality = SampleQuality(extractor, real["test"], 256)
    with pytest.raises(ValueError, match="expected 256 images to score, got 200"):
        quality.score([real["train"][:200]])
