"""Squeeze (:mod:`glowapp.flows.squeeze`): its layout and its channels-last path. The generic
bijection checks are in ``test_bijections.py``."""

from __future__ import annotations

import pytest
import torch

from glowapp.flows import Squeeze


def test_layout() -> None:
    """Squeeze moves each 2×2 block into channels (c-major) and rejects odd sizes."""
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    y, ld = Squeeze()(x)
    assert y.shape == (1, 8, 2, 2)
    assert torch.equal(y[0, :4, 0, 0], torch.tensor([0.0, 1.0, 4.0, 5.0]))
    assert torch.equal(y[0, 4:, 1, 1], torch.tensor([26.0, 27.0, 30.0, 31.0]))
    assert torch.equal(ld, torch.zeros(1))
    with pytest.raises(ValueError, match="even"):
        Squeeze()(torch.zeros(1, 1, 3, 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        Squeeze().inverse(torch.zeros(1, 3, 2, 2))


def test_keeps_channels_last() -> None:
    """On NHWC inputs both directions return NHWC tensors holding the NCHW path's values."""
    x = torch.randn(2, 3, 4, 6)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    y, y_cl = Squeeze()(x)[0], Squeeze()(x_cl)[0]
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y_cl, y)
    back = Squeeze().inverse(y_cl)[0]
    assert back.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(back, x)
