"""Dequantisation densities (:mod:`glowapp.flows.dequantization`): the variational ``q(u | k)`` is
a change of variables with the right log-det, keeps noise in its bin and starts uniform. Training
and testing a module with it: ``tests/module/test_dequantization_module.py``."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import jacobian_logdets, perturb
from torch import Tensor

from glowapp.flows.dequantization import (
    UniformDequantization,
    VariationalDequantization,
    importance_weighted,
    logistic_log_prob,
    logistic_noise,
    make_dequantization,
)
from glowapp.flows.preprocess import quantize

pytestmark = pytest.mark.usefixtures("single_thread")


def pixels(n: int, size: int = 28) -> Tensor:
    """Random uint8 images ``[n, 1, size, size]``."""
    return torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_log_q_is_the_change_of_variables_density() -> None:
    """``log|det ∂u/∂ε|`` of the couplings + sigmoid equals that of the autograd Jacobian, and
    ``log q = log Logistic(ε) − log|det|`` is what ``forward`` returns for the same draw."""
    deq = perturb(VariationalDequantization(1, 8, hidden=8, steps=3), 0.3).double()
    images = pixels(2, size=2)
    levels = quantize(images, 8).double()
    eps = logistic_noise(levels.shape, generator(1)).double()
    u, logdet = deq.transform(eps, levels)
    ref = jacobian_logdets(lambda e: deq.transform(e, levels)[0], eps)
    torch.testing.assert_close(logdet.detach(), ref, rtol=1e-9, atol=1e-9)
    assert float((u.detach() - torch.sigmoid(eps)).abs().max()) > 1e-3  # not the identity

    deq, levels = deq.float(), levels.float()
    y, log_q = deq(images, generator(1))
    eps = logistic_noise(levels.shape, generator(1))
    u, logdet = deq.transform(eps, levels)
    torch.testing.assert_close(log_q, logistic_log_prob(eps) - logdet)
    torch.testing.assert_close(y, (levels + u) / 256)


def test_logistic_log_prob_is_the_logistic_density() -> None:
    """``logistic_log_prob`` sums ``log Logistic(ε; 0, 1)`` (torch's own density) per sample."""
    eps = 5.0 * torch.randn(3, 2, 4, 4, dtype=torch.float64)
    logistic = torch.distributions.TransformedDistribution(
        torch.distributions.Uniform(torch.zeros((), dtype=torch.float64), 1.0),
        [torch.distributions.transforms.SigmoidTransform().inv],
    )
    ref = logistic.log_prob(eps).flatten(1).sum(1)
    torch.testing.assert_close(logistic_log_prob(eps), ref, rtol=1e-12, atol=1e-12)


def test_noise_stays_in_its_bin() -> None:
    """``y = (k + u)/K`` with ``u ∈ [0, 1)``, even for a strongly perturbed q (u near 0 and 1)."""
    deq = perturb(VariationalDequantization(1, 8, hidden=8, steps=2), 3.0)
    images = pixels(64)
    with torch.no_grad():
        y, log_q = deq(images, generator(0))
    k = quantize(images, 8)
    u = y.double() * 256 - k.double()
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert torch.equal(torch.floor(y * 256), k)
    assert torch.isfinite(log_q).all()


def test_variational_starts_as_uniform() -> None:
    """Zero-initialised couplings: ``u = σ(ε)`` of logistic noise is uniform and ``log q = 0``."""
    images = pixels(4)
    with torch.no_grad():
        y_var, log_q = VariationalDequantization(1, 8)(images, generator(5))
        y_uni, log_q_uni = UniformDequantization(8)(images, generator(5))
    torch.testing.assert_close(y_var, y_uni, rtol=0, atol=1e-6)
    assert float(log_q.abs().max()) < 1e-3 and torch.equal(log_q_uni, torch.zeros(4))


def test_importance_weighted_of_equal_weights() -> None:
    """``log (1/S) Σ exp(log w)`` of ``S`` equal weights is that weight."""
    torch.testing.assert_close(importance_weighted(torch.zeros(4, 3)), torch.zeros(3))
    torch.testing.assert_close(
        importance_weighted(torch.full((5, 2), -3.0)), torch.full((2,), -3.0)
    )


def test_validation() -> None:
    with pytest.raises(ValueError, match="dequantization must be one of"):
        make_dequantization("logistic", 1, 8)
    with pytest.raises(ValueError, match="sigma must be > 0, got 0.0"):
        make_dequantization("gaussian", 1, 8)
    with pytest.raises(ValueError, match="at least 1 coupling"):
        VariationalDequantization(1, 8, steps=0)
    with pytest.raises(ValueError, match="width must be positive"):
        VariationalDequantization(1, 8, hidden=0)
