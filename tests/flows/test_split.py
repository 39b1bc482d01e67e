"""Factor-out and priors (:mod:`glowapp.flows.split`): ``Split``'s three-output signature, the
standardising Gaussian of ``TopPrior``, and their class-conditional modes (label offsets,
guidance, checks). As bijections all of them also run through the registry."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import CASES, assert_rel_close, perturb
from hypothesis import given, settings
from hypothesis import strategies as st

from glowapp.flows import Split, TopPrior, standard_normal_log_prob
from glowapp.flows.conditioning import Condition

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


def test_conditional_split_adds_a_label_offset_to_the_prior() -> None:
    """``(μ, log σ) = ZeroConv(h) + (W e)[:, :, None, None]``; a fresh ``W`` ignores the label."""
    split = Split(4, cond_dim=3)
    x = torch.randn(2, 4, 3, 3)
    e = torch.randn(2, 3)
    with torch.no_grad():
        for p in split.prior.parameters():
            p.add_(0.2 * torch.randn_like(p))
        fresh = [split(x, Condition(emb))[1] for emb in (e, torch.randn(2, 3))]
        assert torch.equal(fresh[0], fresh[1])
        perturb(split.cond_proj, 0.3)
        h, eps, ld = split(x, Condition(e))
        params = split.prior(h) + (e @ split.cond_proj.weight.T)[:, :, None, None]
    mean, log_std = params.chunk(2, dim=1)
    torch.testing.assert_close(eps, (x[:, 2:] - mean) * (-log_std).exp())
    torch.testing.assert_close(ld, -log_std.flatten(1).sum(1))


def test_guided_split_and_top_prior_mix_the_label_offsets() -> None:
    """Guided: ``(1 + w)·θ(c) − w·θ(∅)`` for the split's and the top prior's ``(μ, log σ)``."""
    split = perturb(Split(4, cond_dim=3), 0.3)
    top = perturb(TopPrior(4, cond_dim=3), 0.3)
    c, null = torch.randn(2, 2, 3)
    guided = Condition(c, null, 1.5)
    h, eps = torch.randn(2, 2, 3, 3), torch.randn(2, 2, 3, 3)
    with torch.no_grad():
        x, ld = split.inverse(h, eps, guided)
        mean_c, log_std_c = split._mean_log_std(h, Condition(c))
        mean_n, log_std_n = split._mean_log_std(h, Condition(null))
        log_std = 2.5 * log_std_c - 1.5 * log_std_n
        torch.testing.assert_close(x[:, 2:], 2.5 * mean_c - 1.5 * mean_n + log_std.exp() * eps)
        torch.testing.assert_close(ld, log_std.flatten(1).sum(1))
        mean_c, log_std_c = top.mean_log_std(Condition(c), 2)
        mean_n, log_std_n = top.mean_log_std(Condition(null), 2)
        mean_w, log_std_w = top.mean_log_std(guided, 2)
    torch.testing.assert_close(mean_w, 2.5 * mean_c - 1.5 * mean_n)
    torch.testing.assert_close(log_std_w, 2.5 * log_std_c - 1.5 * log_std_n)


def test_top_prior_modes_and_their_checks() -> None:
    """The legacy label table keeps its keys; the embedding mode has its own; never both."""
    assert set(TopPrior(3, num_classes=5).state_dict()) == {"mean", "log_std", "embedding.weight"}
    assert set(TopPrior(3, cond_dim=4).state_dict()) == {"mean", "log_std", "cond_proj.weight"}
    assert TopPrior(3, cond_dim=4).conditional and not TopPrior(3, num_classes=5).conditional
    with pytest.raises(ValueError, match="not both"):
        TopPrior(3, num_classes=5, cond_dim=4)
    h = torch.randn(2, 3, 2, 2)
    with pytest.raises(ValueError, match="pass a Condition, not labels"):
        TopPrior(3, cond_dim=4)(h, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="cond_dim=4"):
        TopPrior(3, cond_dim=4)(h)
    with pytest.raises(ValueError, match="without label embeddings"):
        TopPrior(3, num_classes=5)(h, Condition(torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="cond_dim=3"):
        Split(4, cond_dim=3)(torch.randn(2, 4, 2, 2))
