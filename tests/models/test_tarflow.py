"""The TarFlow image model (:class:`~glowapp.models.TarFlow`): shapes, argument checks, layouts and
memory-saving backprop, bf16 autocast, both kinds of class conditioning, and a short fit.

Invertibility, log p as the change of variables (float64 Jacobian), sampling, float64 and the spec
round trip are checked on the registry's TarFlows (``tests/helpers/model_cases.py``: patch 4 and
2, RGB, conditional), and its density on a two-pixel image integrates to one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.bijections import assert_rel_close, perturb
from helpers.models import images, prepare
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, flat_params

from glowapp import GlowModule
from glowapp.flows.transformer_flow import TransformerFlowBlock
from glowapp.models import TarFlow

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny(**options: object) -> TarFlow:
    """1×4×4 images in 2×2 patches: 4 tokens of 4 values, 2 blocks of 1 layer, width 8."""
    defaults = {"in_channels": 1, "patch_size": 2, "blocks": 2, "layers": 1, "hidden": 8}
    return TarFlow(**(defaults | {"heads": 2, "image_size": 4} | options))


def blocks(model: TarFlow) -> list[TransformerFlowBlock]:
    return [m for m in model.modules() if isinstance(m, TransformerFlowBlock)]


def test_patches_become_tokens() -> None:
    """1×28×28 Fashion-MNIST: patch 4 gives 49 tokens of 16 values, patch 2 196 tokens of 4;
    blocks alternate directions."""
    for patch, tokens, values in ((4, 49, 16), (2, 196, 4), (1, 784, 1)):
        model = TarFlow(1, patch_size=patch, blocks=3, hidden=16, image_size=28)
        assert model.latent_shapes() == [(values, 28 // patch, 28 // patch)]
        assert [(b.tokens, b.channels, b.reverse) for b in blocks(model)] == [
            (tokens, values, False),
            (tokens, values, True),
            (tokens, values, False),
        ]
    assert TarFlow(3, patch_size=4, image_size=(16, 8)).latent_shapes() == [(48, 4, 2)]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="power of two"):
        TarFlow(1, patch_size=3, image_size=24)
    with pytest.raises(ValueError, match="image_size"):
        TarFlow(1)
    with pytest.raises(ValueError, match="not divisible into 8x8 patches"):
        TarFlow(1, patch_size=8, image_size=28)
    with pytest.raises(ValueError, match="num_classes > 0"):
        TarFlow(1, image_size=28, label_embedding_dim=8)
    with pytest.raises(ValueError, match="multiple of the heads"):
        TarFlow(1, image_size=28, hidden=30, heads=4)


def test_channels_last_and_memory_saving_change_nothing_but_cost() -> None:
    """Channels-last: the same log-densities and inverse, kept channels-last. Memory-saving
    backprop (each block recomputed from its sequential inverse): the standard gradients."""
    torch.manual_seed(0)
    model = prepare(tiny(image_size=8), images(16, 1, 8), scale=0.2).double()
    x = images(4, 1, 8, dtype=torch.float64)

    def grads() -> list[torch.Tensor]:
        model.zero_grad()
        model.log_prob(x).sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = grads()
    model.use_memory_saving()
    saving = grads()
    model.use_memory_saving(False)
    assert len(saving) == len(plain) == len(list(model.parameters()))
    for a, b in zip(saving, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)

    with torch.no_grad():
        expected = model.log_prob(x)
        model.use_channels_last()
        assert_rel_close(model.log_prob(x), expected, 1e-12)
        h = torch.randn(2, 4, 4, 4, dtype=torch.float64)
        h = h.contiguous(memory_format=torch.channels_last)
        first = blocks(model)[0]
        for direction in (first, first.inverse):
            assert direction(h)[0].is_contiguous(memory_format=torch.channels_last)
        latents, _ = model.encode(x)
        torch.testing.assert_close(model.decode(latents), x, rtol=0, atol=1e-12)


def test_inverts_under_bf16_autocast_to_its_precision() -> None:
    """``precision: bf16-mixed`` runs the transformers in bf16 and the data path in float32; the
    sequential inverse rounds differently from the parallel forward, so decode(encode(x))
    matches ``x`` to bf16's precision only (not to float32's)."""
    torch.manual_seed(0)
    model = prepare(TarFlow(1, blocks=2, hidden=32, image_size=28), images(8, 1, 28))
    x = images(4, 1, 28)
    with torch.no_grad():
        expected = model.log_prob(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            latents, logdet = model.encode(x)
            assert logdet.dtype == torch.float32
            assert_rel_close(model.log_prob(x), expected, 1e-2)
            assert float((model.decode(latents) - x).abs().max()) < 0.05


def test_class_conditional_top_prior() -> None:
    """``num_classes`` alone: labels change ``log p(x | y)`` through the top prior only."""
    torch.manual_seed(0)
    model = perturb(tiny(num_classes=3), 0.2).eval()
    assert [b.cond_dim for b in blocks(model)] == [0, 0]
    x, y = images(2, 1, 4), torch.tensor([2, 1])
    with torch.no_grad():
        a, b = model.log_prob(x, torch.tensor([0, 0])), model.log_prob(x, torch.tensor([1, 1]))
        assert float((a - b).abs().min()) > 1e-4
        latents, _ = model.encode(x, y)
        assert float((model.decode(latents, y) - x).abs().max()) < 1e-5


def test_label_embeddings_condition_every_block() -> None:
    """``label_embedding_dim``: every block sees the label; encode/decode invert for each label,
    guided sampling is finite and differs, memory-saving backprop gives the standard gradients
    (the label embeddings' included)."""
    torch.manual_seed(0)
    model = perturb(tiny(num_classes=3, label_embedding_dim=4), 0.2).double().eval()
    assert [b.cond_dim for b in blocks(model)] == [4, 4]
    x, y = images(3, 1, 4, dtype=torch.float64), torch.tensor([0, 2, 3])  # 3: no label
    with torch.no_grad():
        latents, _ = model.encode(x, y)
        other, _ = model.encode(x, torch.tensor([1, 0, 2]))
        assert float((latents[0] - other[0]).abs().min()) > 0
        torch.testing.assert_close(model.decode(latents, y), x, rtol=0, atol=1e-12)
        kwargs = {"temperature": 0.7, "labels": torch.tensor([0, 1])}
        plain = model.sample(2, generator=torch.Generator().manual_seed(0), **kwargs)
        guided = model.sample(2, generator=torch.Generator().manual_seed(0), guidance=2.0, **kwargs)
        assert bool(guided.isfinite().all()) and float((guided - plain).abs().max()) > 1e-3

    def grads() -> list[torch.Tensor]:
        model.zero_grad()
        model.log_prob(x, y).sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain_grads = grads()
    model.use_memory_saving()
    saving = grads()
    assert len(saving) == len(plain_grads) == len(list(model.parameters()))
    for a, b in zip(saving, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_a_short_fit_trains_and_samples(fashion_root: Path, tmp_path: Path) -> None:
    """4 optimizer steps on Fashion-MNIST with GlowModule (channels-last, its default): finite
    losses, changed weights, finite samples."""
    torch.manual_seed(0)
    flow = TarFlow(1, patch_size=4, blocks=2, layers=1, hidden=32, image_size=28)
    module = GlowModule(flow, warmup_steps=2)
    before = flat_params(module)
    trainer = quiet_trainer(tmp_path, max_steps=4, limit_val_batches=1, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=fashion_data(fashion_root))
    assert trainer.global_step == 4
    assert bool(trainer.callback_metrics["train/bpd"].isfinite())
    assert bool(trainer.callback_metrics["val/bpd"].isfinite())
    assert float((flat_params(module) - before).abs().max()) > 0
    samples = module.sample(2, temperature=0.7, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 1, 28, 28) and bool(samples.isfinite().all())
