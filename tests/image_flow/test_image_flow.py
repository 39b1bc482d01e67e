"""ImageFlow: the options a trained model samples with (guidance, denoising), the noise-augmented
(Gaussian) models and their Tweedie step, a conditional model used unconditionally, and label
dropout in training."""

from __future__ import annotations

import math

import pytest
import torch

from glowapp import GlowModule, ImageFlow
from glowapp.models import Glow
from glowapp.module import TRAIN
from glowapp.options import Dequantization, Preprocessing, Sampling

pytestmark = pytest.mark.usefixtures("single_thread")

IMAGES = torch.randint(
    0, 256, (6, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
)
LABELS = torch.tensor([0, 1, 2, 0, 1, 2])


def glow(**options: object) -> Glow:
    torch.manual_seed(0)
    return Glow(1, levels=2, steps=2, hidden=8, image_size=8, **options)


def perturbed(model: ImageFlow, labels: torch.Tensor | None = None) -> ImageFlow:
    """``model`` away from its zero-initialised identity (so labels and layers matter), in eval."""
    with torch.no_grad():
        model.flow.encode(IMAGES.float() / 255 - 0.5, labels)  # ActNorm's initialisation
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def guided_glow() -> ImageFlow:
    flow = glow(num_classes=3, label_embedding_dim=4)
    return perturbed(ImageFlow(flow, sampling=Sampling(guidance=2.0)), LABELS)


def test_defaults_come_from_the_model_and_calls_override_them() -> None:
    model = guided_glow()
    assert model.sampling_options() == Sampling(temperature=0.7, guidance=2.0, denoise=False)
    assert model.sampling_options(1.0, 0.0).guidance == 0.0
    generator = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    default = model.sample(4, generator=generator(), labels=LABELS[:4])
    explicit = model.sample(4, 0.7, generator(), LABELS[:4], guidance=2.0, denoise=False)
    plain = model.sample(4, 0.7, generator(), LABELS[:4], guidance=0.0)
    assert torch.equal(default, explicit)
    assert not torch.equal(default, plain)


def test_guidance_zero_reproduces_the_plain_conditional_sampler() -> None:
    model = guided_glow()
    latents = model.flow.sample_latents(4, 0.8, torch.Generator().manual_seed(1))
    plain = model.preprocess.to_images(model.flow.decode(latents, LABELS[:4]))
    assert torch.equal(model.decode(latents, LABELS[:4], guidance=0.0), plain)


@pytest.mark.parametrize(
    ("model", "call", "message"),
    [
        (
            lambda: ImageFlow(glow()),
            lambda m: m.sample(2, guidance=1.0),
            "needs a class-conditional",
        ),
        (
            lambda: ImageFlow(glow(num_classes=3)),
            lambda m: m.sample(2, guidance=1.0),
            "has no null label",
        ),
        (lambda: ImageFlow(glow()), lambda m: m.sample(2, denoise=True), "trained with Gaussian"),
        (lambda: ImageFlow(glow()), lambda m: m.sample(2, temperature=-1.0), "temperature"),
    ],
)
def test_options_a_model_cannot_honour_are_refused(model, call, message) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=message):
        call(model())


def test_gaussian_noise_cannot_follow_a_logit() -> None:
    with pytest.raises(ValueError, match="logit_alpha: null"):
        ImageFlow(glow(), Preprocessing(logit_alpha=0.05), Dequantization("gaussian", sigma=0.05))


def noisy_glow(sigma: float = 0.05) -> ImageFlow:
    model = ImageFlow(glow(), dequantization=Dequantization(kind="gaussian", sigma=sigma))
    return perturbed(model)


def test_a_noise_augmented_model_says_what_its_bits_per_dim_are() -> None:
    model = noisy_glow()
    assert model.noise_sigma == 0.05
    assert "noisy-image bits/dim (σ = 0.05" in model.bits_label
    assert ImageFlow(glow()).bits_label == "bits/dim"
    # Training noise: bin centres plus N(0, σ²), not confined to the bins.
    y, log_q = model.dequantizer(IMAGES, torch.Generator().manual_seed(0))
    centres = model.preprocess.dequantize(IMAGES, noise=False)
    assert torch.equal(log_q, torch.zeros(len(IMAGES)))
    assert 0.04 < float((y - centres).std()) < 0.06


def test_the_tweedie_step_is_sigma_squared_times_the_models_own_score() -> None:
    model = noisy_glow(sigma=0.1)
    x = torch.randn(3, 1, 8, 8) * 0.2
    x_var = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.flow.log_prob(x_var).sum(), x_var)
    torch.testing.assert_close(model.denoise(x), x + 0.01 * grad)
    # on by default for a noise-augmented model, and a real change of the samples
    assert model.sampling_options().denoise is True
    generator = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    denoised = model.sample(4, 1.0, generator())
    raw = model.sample(4, 1.0, generator(), denoise=False)
    assert not torch.equal(denoised, raw)


def test_the_guided_score_contrasts_the_label_with_no_label() -> None:
    model = guided_glow()
    x = torch.randn(3, 1, 8, 8) * 0.2
    labels = LABELS[:3]

    def grad(labels_: torch.Tensor) -> torch.Tensor:
        x_var = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model.flow.log_prob(x_var, labels_).sum(), x_var)
        return g

    conditional, unconditional = grad(labels), grad(torch.full_like(labels, 3))
    expected = conditional + 1.5 * (conditional - unconditional)
    torch.testing.assert_close(model.score(x, labels, guidance=1.5), expected)


def test_a_conditional_model_used_unconditionally_is_its_no_label_branch() -> None:
    joint = guided_glow()
    view = ImageFlow(joint.flow, sampling=joint.sampling, unconditional=True).eval()
    null = torch.full((len(IMAGES),), 3)
    with torch.no_grad():
        torch.testing.assert_close(
            view.bits_per_dim(IMAGES, noise=False), joint.bits_per_dim(IMAGES, False, labels=null)
        )
    assert view.num_classes == 0 and view.null_label is None and view.can_guide
    assert view.sampling_options().guidance == 2.0
    # Editing: encode and decode are the "no label" branch's bijection, exact inverses.
    codes = view.encode(IMAGES)
    for a, b in zip(codes, joint.encode(IMAGES, labels=null), strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(view.decode(codes), joint.decode(codes, null, guidance=0.0))
    # Samples: sample i from class i mod K, guided; the same latents as the conditional model's.
    latents = view.flow.sample_latents(6, 1.0, torch.Generator().manual_seed(4))
    torch.testing.assert_close(
        view.generate(latents), joint.generate(latents, torch.arange(6) % 3, guidance=2.0)
    )
    with pytest.raises(ValueError, match="takes no labels"):
        view.sample(2, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'no label' embedding"):
        ImageFlow(glow(num_classes=3), unconditional=True)


def test_label_dropout_replaces_that_share_of_labels_reproducibly() -> None:
    module = GlowModule(glow(num_classes=3, label_embedding_dim=4), label_dropout=0.25)
    labels = torch.randint(0, 3, (4000,), generator=torch.Generator().manual_seed(0))
    dropped = module.drop_labels(labels, index=7)
    share = float((dropped == 3).float().mean())
    assert abs(share - 0.25) < 0.03
    assert torch.equal(dropped[dropped != 3], labels[dropped != 3])
    assert torch.equal(dropped, module.drop_labels(labels, index=7))
    assert not torch.equal(dropped, module.drop_labels(labels, index=8))
    batch = (IMAGES, LABELS)
    bpd, _ = module.model_step(batch, TRAIN, 0)
    assert bpd.shape == (len(IMAGES),) and bool(torch.isfinite(bpd).all())
    with pytest.raises(ValueError, match="label_dropout needs a class-conditional flow"):
        GlowModule(glow(num_classes=3), label_dropout=0.1)


def test_log_prob_is_minus_bits_per_dim_in_nats() -> None:
    model = perturbed(ImageFlow(glow()))
    with torch.no_grad():
        bpd = model.bits_per_dim(IMAGES, noise=False)
        torch.testing.assert_close(model.log_prob(IMAGES), -bpd * 64 * math.log(2.0))
