"""Class conditioning (:mod:`glowapp.flows.conditioning`): the label embedding's "no label" row,
and ``Condition.params`` / ``label_params`` with and without classifier-free guidance."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from glowapp.flows.conditioning import Condition, LabelEmbedding, check_condition

pytestmark = pytest.mark.usefixtures("single_thread")


class CountingFn:
    """``fn(x, e) = x · (e @ w) + tanh(Σ e)`` per sample (label-dependent, not linear in ``e``),
    recording the batch size of every call."""

    def __init__(self, dim: int) -> None:
        self.w = torch.randn(dim, dtype=torch.float64)
        self.batches: list[int] = []

    def __call__(self, x: Tensor, e: Tensor) -> Tensor:
        self.batches.append(x.shape[0])
        return x * (e @ self.w)[:, None, None, None] + torch.tanh(e.sum(1))[:, None, None, None]


def test_label_embedding_has_a_null_row() -> None:
    """K classes give K + 1 rows; label K (``null_label``) is "no label", a row of its own."""
    embed = LabelEmbedding(10, 6)
    assert embed.null_label == 10 and embed.table.weight.shape == (11, 6)
    labels = torch.tensor([0, 9, 10])
    out = embed(labels)
    assert out.shape == (3, 6)
    torch.testing.assert_close(out[2], embed.table.weight[10])
    assert not torch.equal(out[2], out[1])
    with pytest.raises(IndexError):
        embed(torch.tensor([11]))
    with pytest.raises(ValueError, match="num_classes >= 1"):
        LabelEmbedding(0, 4)
    with pytest.raises(ValueError, match="dim must be >= 1"):
        LabelEmbedding(3, 0)


def test_params_without_guidance_is_one_conditional_call() -> None:
    fn = CountingFn(4)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    emb = torch.randn(3, 4, dtype=torch.float64)
    cond = Condition(emb)
    assert not cond.guided
    assert torch.equal(cond.params(fn, x), fn(x, emb))
    assert fn.batches == [3, 3]


def test_zero_guidance_reproduces_the_conditional_exactly() -> None:
    """``w = 0`` with a null embedding is not guided: the very same numbers, one call."""
    fn = CountingFn(4)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    emb, null = torch.randn(2, 3, 4, dtype=torch.float64)
    cond = Condition(emb, null, 0.0)
    assert not cond.guided
    assert torch.equal(cond.params(fn, x), Condition(emb).params(fn, x))
    assert torch.equal(cond.label_params(lambda e: e.exp()), emb.exp())


@pytest.mark.parametrize("weight", [0.5, 3.0, -1.0])
def test_guided_params_follow_the_formula_in_one_batched_call(weight: float) -> None:
    """``(1 + w)·fn(x, c) − w·fn(x, ∅)``, by hand, from ONE call on a batch of ``2B``."""
    fn = CountingFn(4)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    emb, null = torch.randn(2, 3, 4, dtype=torch.float64)
    cond = Condition(emb, null, weight)
    assert cond.guided
    guided = cond.params(fn, x)
    assert fn.batches == [6]
    expected = (1 + weight) * fn(x, emb) - weight * fn(x, null)
    torch.testing.assert_close(guided, expected, rtol=1e-12, atol=1e-12)
    if weight == -1.0:  # w = −1 is the unconditional model
        torch.testing.assert_close(guided, fn(x, null), rtol=1e-12, atol=1e-12)


def test_label_params_guided_and_plus_label_free_term() -> None:
    """``label_params(f)`` is ``(1 + w)·f(c) − w·f(∅)``, and adding a label-free ``g(x)`` to it
    equals ``params`` of the sum."""
    w = torch.randn(4, 5, dtype=torch.float64)
    x = torch.randn(3, 5, dtype=torch.float64)
    emb, null = torch.randn(2, 3, 4, dtype=torch.float64)
    cond = Condition(emb, null, 2.0)
    guided = cond.label_params(lambda e: e @ w)
    torch.testing.assert_close(guided, 3.0 * (emb @ w) - 2.0 * (null @ w), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        x.sin() + guided,
        cond.params(lambda inp, e: inp.sin() + e @ w, x),
        rtol=1e-12,
        atol=1e-12,
    )


def test_unguided_drops_the_guidance() -> None:
    emb, null = torch.randn(2, 3, 4)
    cond = Condition(emb, null, 2.0).unguided()
    assert cond.null is None and not cond.guided and cond.embedding is emb


def test_check_condition_names_the_problem() -> None:
    emb = torch.zeros(2, 4)
    check_condition(None, 0, "layer", 2)
    check_condition(Condition(emb), 4, "layer", 2)
    with pytest.raises(ValueError, match="class-conditional \\(cond_dim=4\\)"):
        check_condition(None, 4, "layer", 2)
    with pytest.raises(ValueError, match="without label embeddings"):
        check_condition(Condition(emb), 0, "layer", 2)
    with pytest.raises(ValueError, match=r"\[3, 4\] for a batch of 3, got \(2, 4\)"):
        check_condition(Condition(emb), 4, "layer", 3)
