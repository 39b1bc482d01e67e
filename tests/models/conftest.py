"""The prepared model of every image case of the registry (``tests/helpers/model_cases.py``),
shared by the model tests."""

from __future__ import annotations

import pytest
from helpers.model_cases import IMAGE_MODELS, Prepared, ids, shared


@pytest.fixture(scope="session", params=IMAGE_MODELS, ids=ids(IMAGE_MODELS))
def prepared_model(request: pytest.FixtureRequest) -> Prepared:
    """Every image case: its prepared model, a test batch ``[4, C, H, W]`` and the batch's labels
    (None for unconditional models), built once per session (tests must not modify the model:
    copy it first)."""
    return shared(request.param)
