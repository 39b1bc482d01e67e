"""Class-conditional flows (Kingma & Dhariwal 2018): a label-dependent top prior, the marginal
over classes, class means at temperature 0, label checks. (Exact inverses and log-dets given the
labels: the registry's ``glow-conditional``, ``tests/helpers/model_cases.py``.)"""

from __future__ import annotations

import math

import pytest
import torch
from helpers.bijections import perturb
from helpers.models import images

from glowapp.models import Glow

pytestmark = pytest.mark.usefixtures("single_thread")

K = 3


def conditional_glow(size: int = 8) -> Glow:
    """A perturbed (non-trivial prior embedding and classifier) tiny conditional Glow."""
    torch.manual_seed(0)
    model = Glow(1, levels=2, steps=2, hidden=8, image_size=size, num_classes=K)
    perturb(model, 0.2)
    return model.eval()


def test_label_changes_log_prob_and_marginal_mixes_classes() -> None:
    model = conditional_glow()
    x = images(4, 1, 8)
    with torch.no_grad():
        per_class = torch.stack([model.log_prob(x, torch.full((4,), y)) for y in range(K)])
        marginal = model.log_prob(x)
    assert float((per_class[0] - per_class[1]).abs().min()) > 1e-3
    expected = torch.logsumexp(per_class, dim=0) - math.log(K)
    torch.testing.assert_close(marginal, expected, rtol=1e-6, atol=1e-4)


def test_zero_initialised_prior_starts_unconditional() -> None:
    torch.manual_seed(0)
    conditional = Glow(1, levels=2, steps=1, hidden=8, image_size=8, num_classes=K)
    unconditional = Glow(1, levels=2, steps=1, hidden=8, image_size=8)
    unconditional.load_state_dict(conditional.state_dict(), strict=False)
    x = images(3, 1, 8)
    with torch.no_grad():
        reference = unconditional.log_prob(x)
        for y in range(K):
            assert torch.equal(conditional.log_prob(x, torch.full((3,), y)), reference)
        logits = conditional.log_prob_and_logits(x, torch.zeros(3, dtype=torch.long))[1]
    assert logits is not None and torch.equal(logits, torch.zeros(3, K))


def test_temperature_zero_sample_decodes_the_class_mean() -> None:
    """At T = 0 every latent is the prior mean: the top activation is ``μ_y`` and the samples
    differ by class only."""
    model = conditional_glow().double()
    labels = torch.tensor([0, 1, 2, 1])
    samples = model.sample(4, temperature=0.0, labels=labels)
    with torch.no_grad():
        zeros = [torch.zeros(4, *s, dtype=torch.float64) for s in model.latent_shapes()]
        assert torch.equal(samples, model.decode(zeros, labels))
        _, h, _ = model._encode_levels(samples)
        mean, _ = model.top.mean_log_std(labels)
    torch.testing.assert_close(h, mean.expand_as(h), rtol=0, atol=1e-9)
    assert torch.equal(samples[1], samples[3])
    assert float((samples[0] - samples[1]).abs().max()) > 1e-3


def test_label_validation_errors() -> None:
    model = conditional_glow()
    x = images(2, 1, 8)
    with pytest.raises(ValueError, match=r"class-conditional \(num_classes=3\): pass"):
        model.encode(x)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2"):
        model.log_prob(x, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="got 1 labels for a batch of 2"):
        model.log_prob(x, torch.tensor([0]))
    with pytest.raises(ValueError, match="unconditional model"):
        Glow(1, levels=2, steps=1, hidden=8, image_size=8).log_prob(x, torch.tensor([0, 1]))
