"""A :class:`~glowapp.GlowModule` with variational dequantisation: the importance-weighted bits/dim
against the bound, training ``q(u | k)``, testing, and checkpoints that reload ``q``. The
densities themselves: ``tests/flows/test_dequantization.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers.bijections import perturb
from helpers.trainers import quiet_trainer
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from glowapp import GlowModule, training_cli
from glowapp.flows.dequantization import VariationalDequantization, importance_weighted
from glowapp.models import Glow
from glowapp.options import Dequantization

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_module(kind: str = "variational", **kwargs: object) -> GlowModule:
    """A 2-level, 1-step Glow for 28×28 grey images with ``kind`` dequantisation."""
    flow = Glow(in_channels=1, image_size=28, levels=2, steps=1, hidden=8)
    dequantization = Dequantization(kind=kind, steps=2, hidden=8)  # type: ignore[arg-type]
    return GlowModule(flow, dequantization=dequantization, warmup_steps=2, **kwargs)


def pixels(n: int) -> Tensor:
    """Random uint8 images ``[n, 1, 28, 28]``."""
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def loader(n: int) -> DataLoader[tuple[Tensor, ...]]:
    """``n`` random images with labels, in batches of 16."""
    return DataLoader(TensorDataset(pixels(n), torch.randint(0, 10, (n,))), batch_size=16)


@pytest.mark.parametrize("kind", ["uniform", "variational"])
def test_importance_weighted_estimate(kind: str) -> None:
    """K = 1: the IW estimate is the bound of the same draw. K > 1: never above the mean of the
    same draws' bounds (Jensen), and below the bound of independent draws on a fixed batch."""
    module = tiny_module(kind).eval()
    perturb(module, 0.02)
    images = pixels(8)
    with torch.no_grad():
        bound = module.bits_per_dim(images, generator=generator(3))
        iw_1 = module.bits_per_dim_iw(images, 1, generator(3))
        torch.testing.assert_close(iw_1, bound, rtol=0, atol=1e-5)
        # The same 8 draws as bits_per_dim_iw(images, 8, generator(4)) makes, one bound each.
        draws = generator(4)
        log_w = []
        for _ in range(8):
            y, log_q = module.dequantizer(images, draws)
            log_w.append(module.log_prob_y(y) - log_q)
        log_w = torch.stack(log_w)  # [S, B]
        per_draw = module.preprocess.bits_per_dim(log_w, torch.zeros_like(log_w), module.num_dims)
        iw_8 = module.bits_per_dim_iw(images, 8, generator(4))
        log_iw = importance_weighted(log_w)
        expected = module.preprocess.bits_per_dim(log_iw, torch.zeros_like(log_iw), module.num_dims)
        torch.testing.assert_close(iw_8, expected)
        assert bool((iw_8 <= per_draw.mean(dim=0) + 1e-6).all())
        bounds = torch.stack(
            [module.bits_per_dim(images, generator=generator(s)) for s in range(8)]
        )
    assert float(iw_8.mean()) <= float(bounds.mean())


def test_variational_training_test_and_checkpoint(tmp_path: Path) -> None:
    """Training updates q; ``test`` logs the bound and the IW estimate (and the CLI's report says
    which is which); a checkpoint reloads q."""
    pl.seed_everything(0)
    module = tiny_module(iw_samples=3)
    before = [p.detach().clone() for p in module.dequantizer.parameters()]
    trainer = quiet_trainer(tmp_path, max_steps=3, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=loader(64))
    changed = [
        not torch.equal(a, b) for a, b in zip(before, module.dequantizer.parameters(), strict=True)
    ]
    assert all(changed), "every parameter of q(u | x) is trained"
    (metrics,) = trainer.test(module, dataloaders=loader(32), verbose=False)
    assert {"test/bpd", "test/bpd_iw"} <= set(metrics)
    assert metrics["test/bpd_iw"] <= metrics["test/bpd"] + 0.05
    report = training_cli.test_report(module, metrics)
    assert f"test/bpd    = {metrics['test/bpd']:.4f} bits/dim: the variational bound" in report
    assert f"test/bpd_iw = {metrics['test/bpd_iw']:.4f} bits/dim: the importance-weighted" in report

    path = tmp_path / "variational.ckpt"
    trainer.save_checkpoint(path)
    loaded = GlowModule.load_from_checkpoint(path).eval()
    assert isinstance(loaded.dequantizer, VariationalDequantization)
    # Test-time only: not in the checkpoint, so `glowapp test --model.iw_samples S` is honoured.
    assert "iw_samples" not in torch.load(path, weights_only=True)["hyper_parameters"]
    assert loaded.iw_samples == 0
    assert GlowModule.load_from_checkpoint(path, iw_samples=5).iw_samples == 5
    images = pixels(4)
    module.eval()
    with torch.no_grad():
        expected = module.bits_per_dim(images, generator=generator(9))
        torch.testing.assert_close(loaded.bits_per_dim(images, generator=generator(9)), expected)


def test_validation() -> None:
    with pytest.raises(ValueError, match="iw_samples must be >= 0"):
        tiny_module(iw_samples=-1)
    with pytest.raises(ValueError, match="samples >= 1"):
        tiny_module().bits_per_dim_iw(pixels(1), 0)
