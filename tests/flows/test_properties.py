"""Hypothesis round trips: every bijection of the registry inverts exactly on random shapes and
values.

Shapes (batch 1–3, the channel counts each case accepts, even H, W in 2–8 for images) and values
(up to ±``case.bound`` on the real line, within 1e-6 of the ends of a bounded domain) are drawn
by Hypothesis; layers are built with a drawn seed and run in float64, so the round trip must hold
to ~1e-9 relative to the magnitudes involved.
"""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import CASES, Case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.usefixtures("single_thread")

# 15 examples per case (Hypothesis mixes extremes in early): ~50 cases stay within ~10 s of CPU.
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_round_trip(case: Case, data: st.DataObject, seed: int) -> None:
    """``inverse(forward(x)) ≈ x`` relative to the magnitudes involved; log-dets finite, opposite."""
    shape = data.draw(case.domain.shapes(case.min_channels, case.channel_step))
    x = torch.from_numpy(data.draw(case.domain.values(shape, case.bound)))
    torch.manual_seed(seed)
    layer = case.make(shape, torch.float64)
    with torch.no_grad():
        y, ld = layer(x)
        x2, ld_inv = layer.inverse(y)
    assert torch.isfinite(y).all() and torch.isfinite(ld).all() and torch.isfinite(ld_inv).all()
    assert ld.shape == ld_inv.shape == (x.shape[0],)
    assert x2.shape == x.shape and x2.dtype == torch.float64
    scale = 1.0 + float(x.abs().max()) + float(y.abs().max())
    assert float((x2 - x).abs().max()) <= case.round_trip_rtol * scale
    assert float((ld + ld_inv).abs().max()) <= case.round_trip_rtol * (1.0 + float(ld.abs().max()))
