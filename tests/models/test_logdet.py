"""Every image model of the registry at its tiny size, in float64: ``encode``'s log-det is
``log|det J|`` of the brute-force autograd Jacobian of ``x -> (ε_1, …, ε_L)``, ``log_prob`` is
the change of variables with it, and ``decode``'s log-det is that of the inverse (guided
decoding's too, for models with a null label)."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import assert_rel_close, jacobian_logdets
from helpers.model_cases import IMAGE_MODELS, ModelCase, ids, labels_for, log_normal, prepared
from helpers.models import flat_latents, images, unflatten

pytestmark = pytest.mark.usefixtures("single_thread")

# Guided decoding extrapolates every conditional layer's parameters, (1 + w)·θ(y) − w·θ(∅): at
# w = 2 the tiny attention Glow's guided decode reaches |x| ~ 1e14, where the Jacobian's
# condition number (1e20) leaves its float64 determinant to rounding. w = 1 stays within |x| < 1e3.
GUIDANCE = 1.0


@pytest.mark.parametrize("case", IMAGE_MODELS, ids=ids(IMAGE_MODELS))
def test_logdet_matches_jacobian(case: ModelCase) -> None:
    model = prepared(case, tiny=True).double()
    assert case.tiny_shape is not None
    # Conditional models: 4 images, so that the labels include the null label where there is one.
    n = 4 if case.conditional else 2
    x = images(n, *case.tiny_shape, dtype=torch.float64)
    y = labels_for(model, n)
    latents, logdet = model.encode(x, y)
    ref = jacobian_logdets(lambda inp: flat_latents(model.encode(inp, y)[0]), x)
    assert_rel_close(logdet, ref, case.jacobian_rtol)
    assert float(ref.abs().min()) > 0.1, "tiny model is (nearly) volume preserving"
    z = flat_latents(latents).detach()
    assert_rel_close(model.log_prob(x, y), log_normal(z) + ref, case.jacobian_rtol)

    for guidance in [0.0] if model.null_label is None else [0.0, GUIDANCE]:
        _, logdet_dec = model.decode_with_logdet(unflatten(model, z), y, guidance)
        ref_dec = jacobian_logdets(
            lambda inp, w=guidance: model.decode(unflatten(model, inp), y, w), z
        )
        assert_rel_close(logdet_dec, ref_dec, case.jacobian_rtol)
