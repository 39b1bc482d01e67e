"""TarFlow's transformer autoregressive block: exact inverse, log-det against the autograd
Jacobian, causality in the block's order, cached sampling against uncached passes, and class
conditioning with classifier-free guidance."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from helpers.bijections import assert_rel_close, jacobian_logdets, perturb
from torch import Tensor

from glowapp.flows.conditioning import Condition
from glowapp.flows.transformer_flow import TransformerFlowBlock, from_tokens, to_tokens

pytestmark = pytest.mark.usefixtures("single_thread")

E = 3  # label embedding size of the conditional blocks


def block(
    channels: int = 2,
    side: int = 3,
    reverse: bool = False,
    cond_dim: int = 0,
    scale: float = 0.3,
) -> TransformerFlowBlock:
    """A float64 block over ``side × side`` tokens, perturbed away from the identity (frozen:
    the tests differentiate with respect to inputs only)."""
    layer = TransformerFlowBlock(channels, side * side, 16, 2, 2, reverse, cond_dim)
    return perturb(layer, scale).double().eval().requires_grad_(False)


def uncached_inverse(
    layer: TransformerFlowBlock, y: Tensor, params_of: Callable[[Tensor], Tensor]
) -> Tensor:
    """The sampling direction without a cache: ``T`` full causal passes from ``x = 0``; after pass
    ``k`` the first ``k`` tokens (in the block's order) are exact, as in MAF's inverse.
    ``params_of(tokens) -> [B, T, 2, D]``."""
    z = to_tokens(y)
    z = z.flip(1) if layer.reverse else z
    x = torch.zeros_like(z)
    for _ in range(layer.tokens):
        x, _ = layer.transform(z, params_of(x))
    return from_tokens(x.flip(1) if layer.reverse else x, y)


def test_a_new_block_is_the_identity() -> None:
    layer = TransformerFlowBlock(4, 9, 16, 1, 2)
    x = torch.randn(2, 4, 3, 3)
    y, logdet = layer(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))


def test_tokens_are_pixels_in_raster_order_in_any_layout() -> None:
    x = torch.randn(2, 3, 4, 5)
    tokens = to_tokens(x)
    assert tokens.shape == (2, 20, 3)
    assert torch.equal(tokens[:, 2 * 5 + 3], x[:, :, 2, 3])
    last = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(to_tokens(last), tokens)
    assert torch.equal(from_tokens(tokens, x), x) and from_tokens(tokens, x).is_contiguous()
    back = from_tokens(tokens, last)
    assert torch.equal(back, x) and back.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_inverse_undoes_forward(reverse: bool, channels_last: bool) -> None:
    layer = block(channels=3, side=4, reverse=reverse)
    x = torch.randn(3, 3, 4, 4, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    z, logdet = layer(x)
    x_back, logdet_back = layer.inverse(z)
    assert z.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert x_back.is_contiguous(memory_format=torch.channels_last) == channels_last
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(logdet_back, -logdet, rtol=0, atol=1e-10)
    assert float((z - x).abs().max()) > 0.1, "the block is (nearly) the identity"


@pytest.mark.parametrize("reverse", [False, True])
def test_logdet_matches_the_autograd_jacobian(reverse: bool) -> None:
    """2×2 tokens of 2 values, perturbed: both log-dets equal ``slogdet`` of the float64 Jacobian."""
    layer = block(channels=2, side=2, reverse=reverse)
    x = torch.randn(2, 2, 2, 2, dtype=torch.float64)
    z, logdet = layer(x)
    ref = jacobian_logdets(lambda inp: layer(inp)[0], x)
    assert_rel_close(logdet, ref, 1e-10)
    assert float(ref.abs().min()) > 0.1, "the block is (nearly) volume preserving"
    _, logdet_inv = layer.inverse(z.detach())
    assert_rel_close(logdet_inv, jacobian_logdets(lambda inp: layer.inverse(inp)[0], z), 1e-10)


@pytest.mark.parametrize("reverse", [False, True])
def test_each_output_token_depends_only_on_earlier_input_tokens(reverse: bool) -> None:
    """In the block's order, ``∂z_s/∂x_t = 0`` for ``t > s`` and ``≠ 0`` for every ``t ≤ s``."""
    layer = block(channels=2, side=2, reverse=reverse)
    x = torch.randn(1, 2, 2, 2, dtype=torch.float64)

    def ordered(t: Tensor) -> Tensor:
        tokens = to_tokens(t)
        return tokens.flip(1) if reverse else tokens

    def fn(tokens: Tensor) -> Tensor:
        raster = tokens.flip(1) if reverse else tokens
        return ordered(layer(from_tokens(raster, x))[0])

    jac = torch.autograd.functional.jacobian(fn, ordered(x))[0, :, :, 0]  # (T, D, T, D)
    dependence = jac.abs().sum(dim=(1, 3))  # (T, T): [s, t] = Σ |∂z_s/∂x_t|
    later = torch.ones(4, 4, dtype=torch.bool).triu(1)
    assert float(dependence[later].abs().max()) == 0.0
    assert float(dependence[~later].min()) > 1e-6


@pytest.mark.parametrize("reverse", [False, True])
def test_cached_sampling_equals_uncached_passes(reverse: bool) -> None:
    layer = block(channels=2, side=3, reverse=reverse)
    z = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    x, _ = layer.inverse(z)
    torch.testing.assert_close(
        x, uncached_inverse(layer, z, layer.token_params), rtol=0, atol=1e-12
    )


def test_a_cached_call_continues_the_sequence() -> None:
    """Feeding the sequence in two chunks through the caches (the second chunk several positions
    at once) gives the outputs of one causal pass."""
    net = block().net
    inputs = torch.randn(2, 9, 2, dtype=torch.float64)
    caches = net.new_caches()
    chunks = [net(inputs[:, :4], None, caches), net(inputs[:, 4:], None, caches)]
    torch.testing.assert_close(torch.cat(chunks, dim=1), net(inputs), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="exceed the 9 tokens"):
        net(inputs[:, :1], None, caches)


def test_conditional_block_depends_on_the_condition() -> None:
    layer = block(cond_dim=E)
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    a, b = (Condition(torch.randn(2, E, dtype=torch.float64)) for _ in range(2))
    z_a, logdet_a = layer(x, a)
    z_b, _ = layer(x, b)
    assert float((z_a - z_b).abs().max()) > 1e-3
    x_back, logdet_back = layer.inverse(z_a, a)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(logdet_back, -logdet_a, rtol=0, atol=1e-10)
    cached = layer.inverse(z_a, b)[0]
    reference = uncached_inverse(layer, z_a, lambda t: layer.token_params(t, b.embedding))
    torch.testing.assert_close(cached, reference, rtol=0, atol=1e-12)


def test_condition_mismatches_are_refused() -> None:
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="class-conditional"):
        block(cond_dim=E)(x)
    with pytest.raises(ValueError, match="unconditional block"):
        block()(x, Condition(torch.randn(2, E, dtype=torch.float64)))
    with pytest.raises(ValueError, match="9 tokens of 2 values"):
        block()(torch.randn(2, 2, 4, 4, dtype=torch.float64))


def guided_case() -> tuple[TransformerFlowBlock, Tensor, Tensor, Tensor]:
    """A conditional block, latents ``[2, 2, 3, 3]``, label and "no label" embeddings ``[2, E]``."""
    layer = block(cond_dim=E)
    z = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    label = torch.randn(2, E, dtype=torch.float64)
    null = torch.randn(1, E, dtype=torch.float64).expand(2, E)
    return layer, z, label, null


def test_guidance_weight_zero_is_unguided_sampling() -> None:
    layer, z, label, null = guided_case()
    unguided = layer.inverse(z, Condition(label))
    weight_zero = layer.inverse(z, Condition(label, null, 0.0))
    torch.testing.assert_close(weight_zero, unguided, rtol=0, atol=0)


def test_guided_sampling_guides_each_token_on_the_shared_prefix() -> None:
    """``w ≠ 0``: finite, different from unguided, and each token's parameters are
    ``(1 + w)·θ(x_{<t}, c) − w·θ(x_{<t}, ∅)`` on the tokens generated so far (checked against
    uncached passes); the density direction ignores guidance."""
    layer, z, label, null = guided_case()
    w = 2.0
    x, logdet = layer.inverse(z, Condition(label, null, w))
    assert torch.isfinite(x).all() and torch.isfinite(logdet).all()
    unguided, _ = layer.inverse(z, Condition(label))
    assert float((x - unguided).abs().max()) > 1e-3

    def guided(tokens: Tensor) -> Tensor:
        cond, uncond = layer.token_params(tokens, label), layer.token_params(tokens, null)
        return (1 + w) * cond - w * uncond

    torch.testing.assert_close(x, uncached_inverse(layer, z, guided), rtol=0, atol=1e-12)
    # The density direction never guides.
    z_guided_cond, _ = layer(x, Condition(label, null, w))
    torch.testing.assert_close(z_guided_cond, layer(x, Condition(label))[0], rtol=0, atol=0)
