"""Sampling from the models: shapes, the mode at ``T = 0``, seeded draws that re-encode, and
temperature-scaled latents."""

from __future__ import annotations

import pytest
import torch
from helpers.model_cases import Prepared, labels_for
from helpers.models import flat_latents

from glowapp.models import Glow

pytestmark = pytest.mark.usefixtures("single_thread")


def test_sampling(prepared_model: Prepared) -> None:
    """Samples have image shape; ``T = 0`` gives ``decode(0)``; seeded samples re-encode exactly
    (class-conditional models: given their labels)."""
    _, model, x, _ = prepared_model
    n = 3
    labels = labels_for(model, n)
    same = None if labels is None else torch.zeros(n, dtype=torch.long)  # one class for the mode
    samples = model.sample(n, 0.7, labels=labels)
    assert samples.shape == (n, *x.shape[1:]) and torch.isfinite(samples).all()
    mode = model.sample(n, 0.0, labels=same)
    with torch.no_grad():
        zeros = [torch.zeros(n, *s) for s in model.latent_shapes()]
        assert torch.equal(mode, model.decode(zeros, same))
    assert torch.equal(mode, model.sample(n, 0.0, labels=same))
    assert torch.equal(mode[0], mode[1])
    latents = model.sample_latents(n, 0.7, generator=torch.Generator().manual_seed(3))
    seeded = model.sample(n, 0.7, generator=torch.Generator().manual_seed(3), labels=labels)
    with torch.no_grad():
        assert torch.equal(seeded, model.decode(latents, labels))
        recovered, _ = model.encode(seeded, labels)
    assert float((flat_latents(recovered) - flat_latents(latents)).abs().max()) < 1e-4


def test_temperature_scales_latents() -> None:
    """``sample_latents(n, T)`` are ``N(0, T²)`` per latent."""
    model = Glow(1, levels=2, steps=1, hidden=8, image_size=16)
    for temperature in (0.3, 1.0, 1.5):
        for eps in model.sample_latents(256, temperature):
            assert abs(float(eps.mean())) < 0.02 * temperature
            assert abs(float(eps.std()) - temperature) < 0.02 * temperature
