"""Factor-out and priors (:mod:`glowapp.flows.split`): ``Split``'s three-output signature and the
standardising Gaussian of ``TopPrior``. As bijections both also run through the registry."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import CASES, assert_rel_close, perturb
from hypothesis import given, settings
from hypothesis import strategies as st

from glowapp.flows import Split, TopPrior, standard_normal_log_prob

pytestmark = pytest.mark.usefixtures("single_thread")

SPLIT_CASE = next(c for c in CASES if c.name == "split")


def test_split_signature_and_values() -> None:
    """``Split``: ``x -> (h, ε, logdet)`` with ``ε = (z − μ)/σ`` from the prior on ``h``, and back."""
    split = perturb(Split(5), 0.2).eval()
    x = torch.randn(3, 5, 4, 4)
    h, eps, ld = split(x)
    assert h.shape == (3, 2, 4, 4) and eps.shape == (3, 3, 4, 4) and ld.shape == (3,)
    assert eps.dtype == torch.float32 and torch.equal(h, x[:, :2])
    mean, log_std = split.prior(h).chunk(2, dim=1)
    torch.testing.assert_close(eps, (x[:, 2:] - mean) * (-log_std).exp(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ld, -log_std.flatten(1).sum(1), rtol=1e-6, atol=1e-5)
    with torch.no_grad():
        x2, ld_inv = split.inverse(h, eps)
    assert float((x2 - x).abs().max()) < 1e-5
    assert_rel_close(ld_inv, -ld, 1e-6)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_split_signature_round_trip(data: st.DataObject, seed: int) -> None:
    """``Split.inverse(*Split(x)[:2]) == x`` with ``h`` of ``C // 2`` channels, in float64."""
    domain = SPLIT_CASE.domain
    shape = data.draw(domain.shapes(SPLIT_CASE.min_channels, SPLIT_CASE.channel_step))
    x = torch.from_numpy(data.draw(domain.values(shape, SPLIT_CASE.bound)))
    torch.manual_seed(seed)
    split = perturb(Split(shape[1]), 0.2).double()
    with torch.no_grad():
        h, eps, ld = split(x)
        x2, ld_inv = split.inverse(h, eps)
    assert h.shape[1] == shape[1] // 2 and eps.shape[1] == shape[1] - shape[1] // 2
    scale = 1.0 + float(x.abs().max()) + float(eps.abs().max())
    assert float((x2 - x).abs().max()) <= 1e-9 * scale
    assert torch.isfinite(ld).all() and torch.allclose(ld_inv, -ld, rtol=1e-12, atol=1e-12)


def test_split_needs_two_channels() -> None:
    with pytest.raises(ValueError, match="at least 2 channels"):
        Split(1)


def test_top_prior_is_standardising_gaussian() -> None:
    """``log N(ε; 0, I) + logdet`` equals the log-density of ``N(μ, σ²)`` at ``h``."""
    prior = perturb(TopPrior(3), 0.5)
    h = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    eps, ld = prior(h)
    mean, std = prior.mean.double(), prior.log_std.double().exp()
    ref = torch.distributions.Normal(mean, std).log_prob(h).flatten(1).sum(1)
    torch.testing.assert_close(
        (standard_normal_log_prob(eps) + ld).double(), ref, rtol=1e-5, atol=1e-5
    )
