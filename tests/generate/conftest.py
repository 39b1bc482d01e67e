"""The model every test in this folder generates with: the session's trained Glow, loaded."""

from __future__ import annotations

import pytest
from helpers.trained import Trained

from glowapp.generate import load_module
from glowapp.module import GlowModule


@pytest.fixture(scope="module")
def module(trained_model: Trained) -> GlowModule:
    """The small Glow trained once per session on Fashion-MNIST, on the CPU in eval mode."""
    return load_module(trained_model.checkpoint)
