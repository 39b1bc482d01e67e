"""Every model of the registry (``conftest.py``) is one exact bijection ``x -> (ε_1, …, ε_L)``:
``decode(encode(x)) = x``, the latents' shapes, and ``log_prob`` = log-det + prior."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.bijections import assert_rel_close
from helpers.models import flat_latents
from torch import Tensor

from glowapp.models import MultiScaleFlow

pytestmark = pytest.mark.usefixtures("single_thread")

LOG_2PI = math.log(2 * math.pi)


def test_decode_inverts_encode(model_and_data: tuple[MultiScaleFlow, Tensor]) -> None:
    """``decode(encode(x)) == x`` to 1e-5 (float32), latents are non-trivial, log-dets negate."""
    model, x = model_and_data
    with torch.no_grad():
        latents, logdet = model.encode(x)
        x2, logdet_dec = model.decode_with_logdet(latents)
    assert x2.shape == x.shape
    assert float((x2 - x).abs().max()) < 1e-5
    assert all(torch.isfinite(eps).all() for eps in latents) and torch.isfinite(logdet).all()
    # Each log-det is a float32 sum of hundreds of per-element terms that largely cancel, so its
    # rounding error scales with the terms, not with the (small) total: 1e-4 relative.
    assert_rel_close(logdet_dec, -logdet, 1e-4)
    assert float(logdet.abs().min()) > 1.0, (
        "the model is (nearly) volume preserving: not perturbed?"
    )


def test_latent_shapes_match_encode(model_and_data: tuple[MultiScaleFlow, Tensor]) -> None:
    """``latent_shapes()`` lists the shapes ``encode`` returns; they add up to ``C·H·W``."""
    model, x = model_and_data
    with torch.no_grad():
        latents, _ = model.encode(x)
    assert [tuple(eps.shape[1:]) for eps in latents] == model.latent_shapes()
    assert sum(math.prod(s) for s in model.latent_shapes()) == x[0].numel()


def test_log_prob_is_logdet_plus_prior(model_and_data: tuple[MultiScaleFlow, Tensor]) -> None:
    """``log_prob(x) = logdet + Σ log N(ε; 0, I)``, written out by hand."""
    model, x = model_and_data
    with torch.no_grad():
        latents, logdet = model.encode(x)
        log_p = model.log_prob(x)
    z = flat_latents(latents).double()
    ref = logdet.double() - 0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * LOG_2PI
    assert log_p.shape == (x.shape[0],)
    assert_rel_close(log_p, ref, 1e-6)
