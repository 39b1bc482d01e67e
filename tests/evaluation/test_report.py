"""A trained model's evaluation: test bits/dim, and FID/KID ranking reference < samples < noise."""

from __future__ import annotations

import pytest
import torch
from helpers.generation import tiny_glow
from helpers.trained import Trained
from torch import Tensor

from glowapp.evaluation import Evaluation, FeatureExtractor, SampleQuality, evaluate
from glowapp.evaluation.data import to_uint8
from glowapp.evaluation.report import mean_bits_per_dim, sample_batches
from glowapp.generate import draw_noise, load_module, sample_with_noise, score
from glowapp.module import GlowModule

N = 256


@pytest.fixture(scope="module")
def module(trained_model: Trained) -> GlowModule:
    return load_module(trained_model.checkpoint)


@pytest.fixture(scope="module")
def evaluation(
    module: GlowModule, extractor: FeatureExtractor, real: dict[str, Tensor]
) -> Evaluation:
    test = (real["test"], real["test_labels"])
    return evaluate(module, extractor, test, real["train"], [0.7, 1.0], N, batch_size=128)


def test_reference_ranks_below_samples_and_samples_far_below_noise(
    evaluation: Evaluation, extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (N, 1, 28, 28), dtype=torch.uint8, generator=generator)
    noise_quality = SampleQuality(extractor, real["test"], N).score([noise])
    reference = evaluation.reference
    for _, samples in evaluation.rows:
        # The session's model is weak (~4.5 bits/dim); a trained one lies far closer to the
        # reference (see the README's table).
        assert reference.fid < samples.fid < 0.75 * noise_quality.fid, (reference, samples)
        assert reference.kid < samples.kid < 0.75 * noise_quality.kid, (reference, samples)


def test_the_json_document_follows_the_contract(evaluation: Evaluation) -> None:
    document = evaluation.as_json("model.ckpt")
    assert document["checkpoint"] == "model.ckpt"
    assert document["features"] == "fashion-mnist"
    assert document["num_samples"] == N
    assert 3.0 < document["test_bpd"] < 6.0
    assert [row["temperature"] for row in document["rows"]] == [0.7, 1.0]
    for row in document["rows"]:
        assert set(row) == {"temperature", "fid", "kid", "kid_std"}
    assert set(document["reference"]) == {"fid", "kid", "kid_std"}
    assert document["reference"]["fid"] == evaluation.reference.fid


def test_mean_bits_per_dim_is_the_dequantised_bound(
    module: GlowModule, real: dict[str, Tensor]
) -> None:
    images, labels = real["test"][:64], real["test_labels"][:64]
    bpd = mean_bits_per_dim(module, images, labels, batch_size=64, seed=3)
    assert bpd == pytest.approx(score(module, images, noise_samples=1, seed=3).mean().item())


def test_sample_batches_decode_the_noise_at_the_temperature(module: GlowModule) -> None:
    noise = draw_noise(module, 10, seed=1)
    batches = list(sample_batches(module, noise, 0.7, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2] and batches[0].dtype == torch.uint8
    expected = sample_with_noise(module, noise, [0.7])[0]
    assert torch.equal(torch.cat(batches), to_uint8(expected))


def test_a_class_conditional_model_is_sampled_and_scored_class_by_class(
    real: dict[str, Tensor],
) -> None:
    module = tiny_glow(num_classes=10)
    with torch.no_grad():  # the untrained prior ignores the class: give each class its own
        module.flow.top.embedding.weight.normal_()
    noise = draw_noise(module, 12, seed=0)
    samples = torch.cat(list(sample_batches(module, noise, 0.7, batch_size=5)))
    expected = sample_with_noise(module, noise, [0.7], torch.arange(12) % 10)[0]
    assert torch.equal(samples, to_uint8(expected))
    images, labels = real["test"][:8], real["test_labels"][:8]
    generator = torch.Generator().manual_seed(0)
    conditional = module.bits_per_dim(images, True, generator, labels).mean().item()
    generator = torch.Generator().manual_seed(0)
    marginal = module.bits_per_dim(images, True, generator).mean().item()
    assert conditional != pytest.approx(marginal)
    assert mean_bits_per_dim(module, images, labels, batch_size=8) == pytest.approx(conditional)


def test_a_bad_temperature_fails_before_the_long_stages(
    module: GlowModule, extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    calls = []
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0, got -1"):
        evaluate(
            module,
            extractor,
            (real["test"], real["test_labels"]),
            real["train"],
            [0.7, -1.0],
            N,
            progress=lambda *args: calls.append(args),
        )
    assert calls == []


def test_the_reference_needs_one_training_image_per_sample(
    module: GlowModule, extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    with pytest.raises(ValueError, match="needs 300 training images, one per sample; got 256"):
        evaluate(module, extractor, (real["test"], real["test_labels"]), real["train"], [0.7], 300)
