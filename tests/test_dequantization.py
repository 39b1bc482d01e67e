"""Dequantisation (:mod:`glowapp.flows.dequantization`): the variational density ``q(u | k)``, the
bound and the importance-weighted bits/dim, and training/testing/checkpoints with them."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import Tensor

from glowapp import GlowModule
from glowapp.data import FashionMNISTDataModule
from glowapp.flows.coupling import CheckerboardCoupling
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

TINY_MODULE = dict(image_shape=(1, 28, 28), levels=2, steps=1, hidden=8, warmup_steps=2)


def perturb(module: torch.nn.Module, scale: float) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def pixels(n: int, size: int = 28) -> Tensor:
    return torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_log_q_is_the_change_of_variables_density() -> None:
    """``log|det ∂u/∂ε|`` of the couplings + sigmoid equals that of the autograd Jacobian, and
    ``log q = log Logistic(ε) − log|det|`` is what ``forward`` returns for the same draw."""
    torch.manual_seed(0)
    deq = perturb(VariationalDequantization(1, 8, hidden=8, steps=3), 0.3).double()
    images = pixels(2, size=2)
    levels = quantize(images, 8).double()
    eps = logistic_noise(levels.shape, generator(1)).double()
    u, logdet = deq.transform(eps, levels)
    jac = torch.autograd.functional.jacobian(lambda e: deq.transform(e, levels)[0], eps)
    jac = jac.reshape(2, 4, 2, 4)
    assert float(jac[0, :, 1].abs().max()) == 0.0 and float(jac[1, :, 0].abs().max()) == 0.0
    ref = torch.linalg.slogdet(torch.stack([jac[0, :, 0], jac[1, :, 1]]))[1]
    torch.testing.assert_close(logdet.detach(), ref, rtol=1e-9, atol=1e-9)
    assert float((u.detach() - torch.sigmoid(eps)).abs().max()) > 1e-3  # not the identity

    deq, levels = deq.float(), levels.float()
    y, log_q = deq(images, generator(1))
    eps = logistic_noise(levels.shape, generator(1))
    u, logdet = deq.transform(eps, levels)
    torch.testing.assert_close(log_q, logistic_log_prob(eps) - logdet)
    torch.testing.assert_close(y, (levels + u) / 256)


def test_noise_stays_in_its_bin() -> None:
    """``y = (k + u)/K`` with ``u ∈ [0, 1)``, even for a strongly perturbed q (u near 0 and 1)."""
    torch.manual_seed(0)
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


@pytest.mark.parametrize("dequantization", ["uniform", "variational"])
def test_importance_weighted_estimate(dequantization: str) -> None:
    """K = 1: the IW estimate is the bound of the same draw. K > 1: never above the mean of the
    same draws' bounds (Jensen), and below the bound of independent draws on a fixed batch."""
    torch.manual_seed(0)
    module = GlowModule(**TINY_MODULE, dequantization=dequantization).eval()
    perturb(module, 0.02)
    images = pixels(8)
    with torch.no_grad():
        bound = module.bits_per_dim(images, generator=generator(3))
        iw_1 = module.bits_per_dim_iw(images, 1, generator(3))
        torch.testing.assert_close(iw_1, bound, rtol=0, atol=1e-5)
        log_w = module.log_weights(images, 8, generator(4))
        per_draw = module.preprocess.bits_per_dim(log_w, torch.zeros_like(log_w), module.num_dims)
        iw_8 = module.bits_per_dim_iw(images, 8, generator(4))
        assert bool((iw_8 <= per_draw.mean(dim=0) + 1e-6).all())
        bounds = torch.stack(
            [module.bits_per_dim(images, generator=generator(s)) for s in range(8)]
        )
    assert float(iw_8.mean()) <= float(bounds.mean())
    torch.testing.assert_close(importance_weighted(torch.zeros(4, 3)), torch.zeros(3))


def tiny_data(root: Path) -> FashionMNISTDataModule:
    return FashionMNISTDataModule(
        root=str(root), batch_size=16, train_limit=64, val_limit=16, test_limit=32, download=False
    )


def test_variational_training_test_and_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training updates q; ``test`` logs the bound and the IW estimate, and prints which is
    which; a checkpoint reloads q."""
    pl.seed_everything(0)
    module = GlowModule(**TINY_MODULE, dequantization="variational", iw_samples=3)
    before = [p.detach().clone() for p in module.dequantizer.parameters()]
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    data = tiny_data(tmp_path / "data")
    trainer.fit(module, datamodule=data)
    changed = [
        not torch.equal(a, b) for a, b in zip(before, module.dequantizer.parameters(), strict=True)
    ]
    assert all(changed), "every parameter of q(u | x) is trained"
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    assert {"test/bpd", "test/bpd_iw"} <= set(metrics)
    assert metrics["test/bpd_iw"] <= metrics["test/bpd"] + 0.05
    printed = capsys.readouterr().out
    assert f"test/bpd    = {metrics['test/bpd']:.4f} bits/dim: the variational bound" in printed
    assert (
        f"test/bpd_iw = {metrics['test/bpd_iw']:.4f} bits/dim: the importance-weighted" in printed
    )

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
    with pytest.raises(ValueError, match="dequantization must be one of"):
        make_dequantization("gaussian", 1, 8)
    with pytest.raises(ValueError, match="iw_samples must be >= 0"):
        GlowModule(**TINY_MODULE, iw_samples=-1)
    with pytest.raises(ValueError, match="samples >= 1"):
        GlowModule(**TINY_MODULE).bits_per_dim_iw(pixels(1), 0)
    coupling = CheckerboardCoupling(1, 8, context_channels=4)
    with pytest.raises(ValueError, match="context_channels=4"):
        coupling(torch.zeros(1, 1, 2, 2))
