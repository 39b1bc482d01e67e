"""Every model works in float64 (issue 17, item 4): Glow, RealNVP, NICE and a class-conditional
Glow give float64 bits/dim that agree with float32, and train with ``precision="64-true"``."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers.bijections import perturb
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, fixed_batch, flat_params
from torch import Tensor

from glowapp import GlowModule
from glowapp.models import NICE, Glow, MultiScaleFlow, RealNVP

pytestmark = pytest.mark.usefixtures("single_thread")

FLOWS: dict[str, Callable[[], MultiScaleFlow]] = {
    "glow": lambda: Glow(1, image_size=28, levels=2, steps=2, hidden=16, coupling="spline"),
    "glow-conditional": lambda: Glow(1, image_size=28, levels=2, steps=1, hidden=8, num_classes=10),
    "realnvp": lambda: RealNVP(1, image_size=28, scales=2, hidden=8, blocks=1),
    "nice": lambda: NICE(1, image_size=28, couplings=2, hidden=8, blocks=1),
}


def module_of(name: str) -> GlowModule:
    """The flow ``name`` in a module, away from its identity initialisation: ActNorms
    data-initialised on a batch, then every parameter perturbed (eval mode)."""
    torch.manual_seed(0)
    module = GlowModule(FLOWS[name]()).train()
    images = fixed_batch(module)
    labels = torch.arange(8) if module.flow.num_classes else None
    with torch.no_grad():
        module.bits_per_dim(images, labels=labels)
    perturb(module.flow, 0.05)
    return module.eval()


@pytest.mark.parametrize("name", FLOWS)
def test_float64_bits_per_dim_agree_with_float32(name: str) -> None:
    single = module_of(name)
    double = module_of(name).double()
    images = fixed_batch(single, 4)
    labels = torch.tensor([0, 2, 1, 0]) if single.flow.num_classes else None
    with torch.no_grad():
        expected = single.bits_per_dim(images, noise=False, labels=labels)
        bpd = double.bits_per_dim(images, noise=False, labels=labels)
        marginal = double.bits_per_dim(images, noise=False)  # marginal over the classes
    assert bpd.dtype == torch.float64 and marginal.dtype == torch.float64
    torch.testing.assert_close(bpd, expected.double(), rtol=1e-5, atol=1e-5)
    assert torch.isfinite(marginal).all()
    latents = double.encode(images, labels=labels)
    assert all(z.dtype == torch.float64 for z in latents)
    decoded = double.decode(latents, labels)  # images in [0, 1] for display
    torch.testing.assert_close(decoded, images.float() / 255, rtol=0, atol=0)


def test_class_conditional_log_prob_and_logits_in_float64() -> None:
    """The classifier head runs in the flow's dtype (it once cast ``h`` to float32 and failed
    with "mat1 and mat2 must have the same dtype")."""
    flow = module_of("glow-conditional").double().flow
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64) - 0.5
    log_p, logits = flow.log_prob_and_logits(x, torch.tensor([1, 2]))
    assert log_p.dtype == torch.float64 and logits is not None and logits.dtype == torch.float64
    per_class = torch.stack([flow.log_prob(x, torch.full((2,), y)) for y in range(10)])
    assert float(per_class.std(0).min()) > 1e-3  # the labels matter
    marginal = flow.log_prob(x)
    torch.testing.assert_close(
        marginal, per_class.logsumexp(0) - math.log(10), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", FLOWS)
def test_training_in_float64(tmp_path: Path, fashion_root: Path, name: str) -> None:
    pl.seed_everything(0)
    module = GlowModule(FLOWS[name](), warmup_steps=1)
    before = flat_params(module)
    t = quiet_trainer(tmp_path, max_steps=2, precision="64-true", limit_val_batches=1)
    t.fit(module, datamodule=fashion_data(fashion_root, batch_size=8, train_limit=16, val_limit=8))
    after: Tensor = flat_params(module)
    assert after.dtype == torch.float64 and torch.isfinite(after).all()
    assert not torch.equal(after, before.double())
    assert torch.isfinite(t.callback_metrics["val/bpd"])
