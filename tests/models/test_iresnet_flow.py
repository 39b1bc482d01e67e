"""The multi-scale i-ResNet image model (:class:`~glowapp.models.IResNetFlow`): its structure, the
series model's inverse, bf16 autocast, the series log-det against the exact one, memory-saving
backprop and channels-last, checkpoints, and a training smoke run. The exact model is in the
model registry (``tests/helpers/model_cases.py``: round trip, Jacobian, float64, spec)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from helpers.bijections import assert_rel_close
from helpers.models import images, prepare
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, fixed_batch

from glowapp import GlowModule
from glowapp.flows import FlattenedResidualBlock
from glowapp.models import IResNetFlow, flow_spec
from glowapp.module import load_module

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny(**options: object) -> IResNetFlow:
    """2 levels × 2 steps, width 8, on 1×4×4 images: latents 2×2×2 and 8×1×1 (16 + 8 numbers)."""
    return IResNetFlow(**({"in_channels": 1, "image_size": 4, "steps": 2, "hidden": 8} | options))


def test_structure_and_latent_shapes() -> None:
    model = IResNetFlow(in_channels=1, image_size=(8, 4), levels=2, steps=3, hidden=8)
    blocks = [m for m in model.modules() if isinstance(m, FlattenedResidualBlock)]
    assert [b.shape for b in blocks] == [(4, 4, 2)] * 3 + [(8, 2, 1)] * 3
    assert model.latent_shapes() == [(2, 4, 2), (8, 2, 1)]
    with pytest.raises(ValueError, match="image_size"):
        IResNetFlow(in_channels=1)
    with pytest.raises(ValueError, match="multiples of 4"):
        IResNetFlow(in_channels=1, image_size=6)
    with pytest.raises(ValueError, match="built for"):
        blocks[0](torch.zeros(2, 4, 2, 2))


def test_series_model_decode_inverts_encode() -> None:
    """The default ``"series"`` model inverts and samples like the exact one (registered in
    ``tests/helpers/model_cases.py``): its fixed-point inverse does not depend on the log-det."""
    torch.manual_seed(0)
    model = prepare(tiny(image_size=8), images(16, 1, 8))
    x = images(4, 1, 8)
    with torch.no_grad():
        latents, _ = model.encode(x)
        assert [tuple(e.shape[1:]) for e in latents] == model.latent_shapes()
        assert torch.allclose(model.decode(latents), x, atol=1e-5)
        samples = model.sample(3, temperature=0.7, generator=torch.Generator().manual_seed(1))
        assert samples.shape == (3, 1, 8, 8) and bool(samples.isfinite().all())


def test_blocks_run_in_float32_under_autocast() -> None:
    """Under bf16 autocast (``precision: bf16-mixed``) the blocks stay float32, so the model still
    inverts (only the split priors' convolutions run in bf16)."""
    torch.manual_seed(0)
    model = prepare(tiny(image_size=8, logdet="exact"), images(16, 1, 8))
    x = images(4, 1, 8)
    with torch.no_grad():
        expected = model.log_prob(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            latents, _ = model.encode(x)
            assert torch.allclose(model.log_prob(x), expected, atol=0.1)
            assert torch.allclose(model.decode(latents), x, atol=1e-4)


def test_series_log_prob_estimates_the_exact_one() -> None:
    """The default ``"series"`` log-det averages (over Hutchinson draws) to the exact one."""
    torch.manual_seed(0)
    model = prepare(tiny(image_size=8, hutchinson_samples=64), images(16, 1, 8), scale=0.2)
    x = images(2, 1, 8, dtype=torch.float64)
    model = model.double()
    with torch.no_grad():
        series = torch.stack([model.log_prob(x) for _ in range(20)]).mean(0)
        for block in model.modules():
            if isinstance(block, FlattenedResidualBlock):
                block.block.logdet = "exact"
        exact = model.log_prob(x)
    assert_rel_close(series, exact, 2e-3)


def test_memory_saving_and_channels_last_change_nothing_but_cost() -> None:
    """Exact log-dets: memory-saving backprop (blocks recomputed from their fixed-point inverse)
    gives the standard gradients, and channels-last the same log-densities, kept channels-last."""
    torch.manual_seed(0)
    model = prepare(tiny(logdet="exact", image_size=8), images(16, 1, 8), scale=0.2).double()
    x = images(4, 1, 8, dtype=torch.float64)

    def grads() -> list[torch.Tensor]:
        model.zero_grad()
        model.log_prob(x).sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = grads()
    saving = grads() if model.use_memory_saving() else []
    model.use_memory_saving(False)
    assert len(saving) == len(plain)
    for a, b in zip(saving, plain, strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9)

    with torch.no_grad():
        expected = model.log_prob(x)
        model.use_channels_last()
        latents, _ = model.encode(x)
        assert torch.allclose(model.log_prob(x), expected, rtol=1e-10)
        block = model.levels[0].layers[2]
        h = torch.randn(2, 4, 4, 4, dtype=torch.float64).contiguous(
            memory_format=torch.channels_last
        )
        assert block(h)[0].is_contiguous(memory_format=torch.channels_last)
        assert block.inverse(h)[0].is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(model.decode(latents), x, atol=1e-10)


def test_training_smoke_and_checkpoint_round_trip(fashion_root: Path, tmp_path: Path) -> None:
    """3 optimizer steps on Fashion-MNIST give finite losses; the checkpoint reloads the model."""
    torch.manual_seed(0)
    flow = IResNetFlow(in_channels=1, image_size=28, levels=2, steps=1, hidden=16)
    module = GlowModule(flow, warmup_steps=2)
    losses: list[float] = []

    trainer = quiet_trainer(tmp_path, max_steps=3, limit_val_batches=0, num_sanity_val_steps=0)
    original = module.training_step

    def training_step(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        out = original(*args, **kwargs)
        loss = out["loss"] if isinstance(out, dict) else out
        losses.append(float(loss.detach()))
        return out

    module.training_step = training_step  # type: ignore[method-assign]
    trainer.fit(module, datamodule=fashion_data(fashion_root))
    assert trainer.global_step == 3 and len(losses) == 3
    assert all(math.isfinite(v) for v in losses), losses

    trainer.save_checkpoint(tmp_path / "i.ckpt")
    loaded = load_module(tmp_path / "i.ckpt")
    assert isinstance(loaded.flow, IResNetFlow)
    assert flow_spec(loaded.flow) == flow_spec(module.flow)
    module.eval()
    batch = fixed_batch(module, 4)
    with torch.no_grad():
        torch.manual_seed(5)
        expected = module.bits_per_dim(batch, noise=False)
        torch.manual_seed(5)
        assert torch.equal(loaded.bits_per_dim(batch, noise=False), expected)
        assert bool(expected.isfinite().all())
