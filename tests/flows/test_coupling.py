"""Coupling layers (:mod:`glowapp.flows.coupling`): the affine scale bound and argument checks.
The generic bijection checks (every transform, both partitions) are in ``test_bijections.py``."""

from __future__ import annotations

import pytest
import torch

from glowapp.flows import ChannelCoupling, CheckerboardCoupling


def test_affine_coupling_scale_is_bounded() -> None:
    """Huge conditioner outputs still give ``|log s| < 2`` per element, so inversion stays finite."""
    layer = ChannelCoupling(4, 8, "affine")
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(10.0 * torch.randn_like(p))
    x = torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        y, ld = layer(x)
        x2, _ = layer.inverse(y)
    assert float(ld.abs().max()) <= 2.0 * 2 * 4 * 4
    assert torch.isfinite(x2).all()


def test_argument_validation() -> None:
    """Bad constructor arguments and a missing context raise ValueError naming the problem."""
    with pytest.raises(ValueError, match="at least 2 channels"):
        ChannelCoupling(1, 8)
    with pytest.raises(ValueError, match="affine"):
        ChannelCoupling(4, 8, transform="cubic")
    with pytest.raises(ValueError, match="positive"):
        CheckerboardCoupling(4, 0)
    coupling = CheckerboardCoupling(1, 8, context_channels=4)
    with pytest.raises(ValueError, match="context_channels=4"):
        coupling(torch.zeros(1, 1, 2, 2))
