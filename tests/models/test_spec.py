"""Every image model of the registry as plain data and back: ``flow_spec`` is JSON, names the
model's class and image size, and ``build_flow`` rebuilds the same model (the same spec and
state-dict keys; with the weights loaded, the same log-densities)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.model_cases import IMAGE_MODELS, ModelCase, ids, shared

from glowapp.models import build_flow, flow_spec

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("case", IMAGE_MODELS, ids=ids(IMAGE_MODELS))
def test_spec_rebuilds_the_same_model(case: ModelCase) -> None:
    _, model, x, y = shared(case)
    spec = flow_spec(model)
    cls = type(model)
    assert spec["class_path"] == f"{cls.__module__}.{cls.__qualname__}"
    assert json.loads(json.dumps(spec)) == spec
    assert spec["init_args"]["image_size"] == list(model.image_size)
    rebuilt = build_flow(spec)
    assert type(rebuilt) is cls and flow_spec(rebuilt) == spec
    rebuilt.load_state_dict(model.state_dict())  # strict: the same parameters and buffers
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt.log_prob(x, y), model.log_prob(x, y))
