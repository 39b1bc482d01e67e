"""Every model works in float64 (issue 17, item 4): every image model of the registry
(``tests/helpers/model_cases.py``) gives float64 bits/dim that agree with float32 and decodes
its own encodings back to the images exactly; the cases marked ``fit`` train with
``precision="64-true"``; a class-conditional Glow's classifier head runs in float64."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers.bijections import perturb
from helpers.model_cases import IMAGE_MODELS, ModelCase, case, ids, labels_for
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, fixed_batch, flat_params
from torch import Tensor

from glowapp import GlowModule

pytestmark = pytest.mark.usefixtures("single_thread")

FIT = [c for c in IMAGE_MODELS if c.fit]


def module_of(model_case: ModelCase) -> GlowModule:
    """The case's model in a module, away from its identity initialisation: ActNorms
    data-initialised on a batch, then every parameter perturbed (eval mode)."""
    assert model_case.build is not None
    torch.manual_seed(0)
    module = GlowModule(model_case.build()).train()
    images = fixed_batch(module)
    with torch.no_grad():
        module.bits_per_dim(images, labels=labels_for(module.flow, len(images)))
    perturb(module.flow, 0.05)
    return module.eval()


@pytest.mark.parametrize("model_case", IMAGE_MODELS, ids=ids(IMAGE_MODELS))
def test_float64_bits_per_dim_agree_with_float32(model_case: ModelCase) -> None:
    single = module_of(model_case)
    double = module_of(model_case).double()
    images = fixed_batch(single, 4)
    labels = labels_for(single.flow, 4)
    with torch.no_grad():
        expected = single.bits_per_dim(images, noise=False, labels=labels)
        bpd = double.bits_per_dim(images, noise=False, labels=labels)
        marginal = double.bits_per_dim(images, noise=False)  # marginal over the classes
    assert bpd.dtype == torch.float64 and marginal.dtype == torch.float64
    tol = model_case.float64_rtol
    torch.testing.assert_close(bpd, expected.double(), rtol=tol, atol=tol)
    assert torch.isfinite(marginal).all()
    latents = double.encode(images, labels=labels)
    assert all(z.dtype == torch.float64 for z in latents)
    decoded = double.decode(latents, labels)  # images in [0, 1] for display
    torch.testing.assert_close(decoded, images.float() / 255, rtol=0, atol=0)


def test_class_conditional_log_prob_and_logits_in_float64() -> None:
    """The classifier head runs in the flow's dtype (it once cast ``h`` to float32 and failed
    with "mat1 and mat2 must have the same dtype")."""
    flow = module_of(case("glow-conditional")).double().flow
    k = flow.num_classes
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64) - 0.5
    log_p, logits = flow.log_prob_and_logits(x, torch.tensor([1, 2]))
    assert log_p.dtype == torch.float64 and logits is not None and logits.dtype == torch.float64
    with torch.no_grad():
        per_class = torch.stack([flow.log_prob(x, torch.full((2,), y)) for y in range(k)])
        marginal = flow.log_prob(x)
    assert float(per_class.std(0).min()) > 1e-3  # the labels matter
    torch.testing.assert_close(
        marginal, per_class.logsumexp(0) - math.log(k), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("model_case", FIT, ids=ids(FIT))
def test_training_in_float64(tmp_path: Path, fashion_root: Path, model_case: ModelCase) -> None:
    assert model_case.build is not None
    pl.seed_everything(0)
    module = GlowModule(model_case.build(), warmup_steps=1)
    before = flat_params(module)
    t = quiet_trainer(tmp_path, max_steps=2, precision="64-true", limit_val_batches=1)
    t.fit(module, datamodule=fashion_data(fashion_root, batch_size=8, train_limit=16, val_limit=8))
    after: Tensor = flat_params(module)
    assert after.dtype == torch.float64 and torch.isfinite(after).all()
    assert not torch.equal(after, before.double())
    assert torch.isfinite(t.callback_metrics["val/bpd"])
