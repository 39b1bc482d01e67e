"""``DiagonalScaling`` (:mod:`glowapp.flows.scaling`) rejects inputs of another shape. The generic
bijection checks are in ``test_bijections.py``."""

from __future__ import annotations

import pytest
import torch

from glowapp.flows import DiagonalScaling


def test_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        DiagonalScaling((1, 4, 4))(torch.zeros(2, 1, 4, 2))
