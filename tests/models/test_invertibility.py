"""Every image model of the registry (``tests/helpers/model_cases.py``) is one exact bijection
``x -> (ε_1, …, ε_L)`` (given the labels, for class-conditional models): ``decode(encode(x)) =
x``, the latents' shapes, ``log_prob`` = log-det + prior, and labels that matter."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.bijections import assert_rel_close
from helpers.model_cases import IMAGE_MODELS, ModelCase, Prepared, ids, other_labels, shared
from helpers.models import flat_latents

pytestmark = pytest.mark.usefixtures("single_thread")

LOG_2PI = math.log(2 * math.pi)
CONDITIONAL = [c for c in IMAGE_MODELS if c.conditional]


def test_decode_inverts_encode(prepared_model: Prepared) -> None:
    """``decode(encode(x)) == x`` (float32), latents are non-trivial, log-dets negate."""
    case, model, x, y = prepared_model
    with torch.no_grad():
        latents, logdet = model.encode(x, y)
        x2, logdet_dec = model.decode_with_logdet(latents, y)
    assert x2.shape == x.shape
    assert float((x2 - x).abs().max()) < case.inverse_atol
    assert all(torch.isfinite(eps).all() for eps in latents) and torch.isfinite(logdet).all()
    # Each log-det is a float32 sum of hundreds of per-element terms that largely cancel, so its
    # rounding error scales with the terms, not with the (small) total: 1e-4 relative.
    assert_rel_close(logdet_dec, -logdet, case.inverse_logdet_rtol)
    assert float(logdet.abs().min()) > 1.0, (
        "the model is (nearly) volume preserving: not perturbed?"
    )


def test_latent_shapes_match_encode(prepared_model: Prepared) -> None:
    """``latent_shapes()`` lists the shapes ``encode`` returns; they add up to ``C·H·W``."""
    _, model, x, y = prepared_model
    with torch.no_grad():
        latents, _ = model.encode(x, y)
    assert [tuple(eps.shape[1:]) for eps in latents] == model.latent_shapes()
    assert sum(math.prod(s) for s in model.latent_shapes()) == x[0].numel()


def test_log_prob_is_logdet_plus_prior(prepared_model: Prepared) -> None:
    """``log_prob(x) = logdet + Σ log N(ε; 0, I)``, written out by hand."""
    _, model, x, y = prepared_model
    with torch.no_grad():
        latents, logdet = model.encode(x, y)
        log_p = model.log_prob(x, y)
    z = flat_latents(latents).double()
    ref = logdet.double() - 0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * LOG_2PI
    assert log_p.shape == (x.shape[0],)
    assert_rel_close(log_p, ref, 1e-6)


@pytest.mark.parametrize("case", CONDITIONAL, ids=ids(CONDITIONAL))
def test_labels_matter(case: ModelCase) -> None:
    """Another label gives another density for every image (the null label among them where the
    model has one) and another encoding: of the top latent (the legacy mode's label enters
    through the top prior only), of every latent with label embeddings (the whole flow sees the
    label). Each label still inverts exactly."""
    _, model, x, y = shared(case)
    assert y is not None
    other = other_labels(model, y)
    with torch.no_grad():
        latents, _ = model.encode(x, y)
        others, _ = model.encode(x, other)
        assert float((model.decode(others, other) - x).abs().max()) < case.inverse_atol
        differs = (model.log_prob(x, y) - model.log_prob(x, other)).abs()
    assert float(differs.min()) > 1e-4, differs
    everywhere = model.null_label is not None  # label embeddings: every layer sees the label
    for level, (eps, eps_other) in enumerate(zip(latents, others, strict=True)):
        if everywhere or level == len(latents) - 1:
            assert float((eps - eps_other).abs().min()) > 0, f"latent {level} ignores the label"


@pytest.mark.parametrize("case", IMAGE_MODELS, ids=ids(IMAGE_MODELS))
def test_the_case_builds_what_it_states(case: ModelCase) -> None:
    """The registry's shapes and conditionality are the built models' (both sizes)."""
    for build, shape in ((case.build, case.shape), (case.tiny, case.tiny_shape)):
        assert build is not None
        model = build()
        assert (model.in_channels, *model.image_size) == shape
        assert bool(model.num_classes) == case.conditional
