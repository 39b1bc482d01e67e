"""Training GlowModule with a Trainer on real Fashion-MNIST: it learns and logs, runs under mixed
precision, resumes exactly, is reproducible, and logs to W&B offline without an account."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, flat_params, tiny_module
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from glowapp.callbacks import SkipNonFiniteSteps

pytestmark = pytest.mark.usefixtures("single_thread")


def logged(path: Path, key: str) -> list[float]:
    """Every value of ``key`` in a CSVLogger's ``metrics.csv``, in order."""
    with path.open() as f:
        return [float(row[key]) for row in csv.DictReader(f) if row.get(key)]


def test_fit_learns_and_logs(tmp_path: Path, fashion_root: Path) -> None:
    """8 steps of lr 5e-3: the logged training bits/dim falls by more than half a bit (measured
    8.39 → 7.71) and the validation bits/dim falls between the two validations (7.91 → 7.61)."""
    pl.seed_everything(0)
    module = tiny_module(lr=5e-3)
    logger = CSVLogger(tmp_path, name="run")
    skip = SkipNonFiniteSteps()
    t = quiet_trainer(
        tmp_path,
        max_steps=8,
        val_check_interval=4,
        num_sanity_val_steps=0,
        logger=logger,
        log_every_n_steps=1,
        callbacks=[skip],
        deterministic=True,
    )
    t.fit(module, datamodule=fashion_data(fashion_root))
    assert t.optimizers[0].defaults["fused"]
    metrics = Path(logger.log_dir) / "metrics.csv"
    train, val = logged(metrics, "train/bpd"), logged(metrics, "val/bpd")
    assert len(train) == 8 and len(val) == 2
    assert train[0] > 8.0 and train[-1] < train[0] - 0.5, train
    assert val[-1] < val[0] - 0.15, val
    assert float(t.callback_metrics["val/bpd"]) == pytest.approx(val[-1])
    assert skip.skipped_steps == 0


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_fit_has_finite_loss(
    tmp_path: Path, fashion_root: Path, precision: str
) -> None:
    """The CPU twins of GPU mixed precision: a 16-mixed config runs on a CPU too (Lightning
    falls back to bf16 autocast there; on CUDA it uses float16 with a GradScaler). With
    gradient clipping, as the configs have it: Lightning cannot clip for a fused optimizer under
    mixed precision, so the module takes the multi-tensor Adam there (fused in 32-true)."""
    pl.seed_everything(0)
    module = tiny_module()
    skip = SkipNonFiniteSteps()
    t = quiet_trainer(
        tmp_path,
        max_steps=6,
        precision=precision,
        gradient_clip_val=50.0,
        limit_val_batches=1,
        callbacks=[skip],
    )
    t.fit(module, datamodule=fashion_data(fashion_root))
    defaults = t.optimizers[0].defaults
    assert defaults["foreach"] and not defaults["fused"]
    assert torch.isfinite(t.callback_metrics["train/bpd"])
    assert torch.isfinite(t.callback_metrics["val/bpd"])
    assert skip.skipped_steps == 0
    # log-dets stay float32 under autocast
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    with torch.autocast("cpu", dtype=dtype):
        _, logdet = module.flow.encode(torch.randn(2, 1, 28, 28))
    assert logdet.dtype == torch.float32


def test_resume_continues_exactly(tmp_path: Path, fashion_root: Path) -> None:
    """Resuming from the checkpoint written at step N of a 2N-step run reproduces its final
    weights, learning rate and skipped-step count.

    Exact at epoch boundaries: the data order is drawn from (seed, epoch) and the dequantisation
    noise from (seed, step), so nothing depends on the global RNG. (Mid-epoch, Lightning restarts
    a plain DataLoader's epoch; the step count is still right — see tests/cli/test_cli_reliability.py.)
    """
    steps_per_epoch = 4  # 128 images / batch 32

    def run(ckpt_path: Path | None = None) -> tuple[torch.Tensor, pl.Trainer]:
        pl.seed_everything(0)
        module = tiny_module(lr_schedule="cosine")
        checkpoint = ModelCheckpoint(
            dirpath=tmp_path / "ckpt",
            filename="{step}",
            every_n_train_steps=steps_per_epoch,
            save_top_k=-1,
        )
        t = quiet_trainer(
            tmp_path,
            max_steps=2 * steps_per_epoch,
            limit_val_batches=0,
            enable_checkpointing=True,
            callbacks=[checkpoint, SkipNonFiniteSteps()],
            deterministic=True,
        )
        t.fit(module, datamodule=fashion_data(fashion_root), ckpt_path=ckpt_path)
        return flat_params(module), t

    straight, t_straight = run()
    resumed, t_resumed = run(tmp_path / "ckpt" / f"step={steps_per_epoch}.ckpt")
    assert t_resumed.global_step == t_straight.global_step == 2 * steps_per_epoch
    torch.testing.assert_close(resumed, straight, rtol=0, atol=1e-6)
    # The schedule resumed too: both runs ended the cosine decay at step 8, learning rate 0.
    schedulers = [t.lr_scheduler_configs[0].scheduler for t in (t_straight, t_resumed)]
    assert [s.last_epoch for s in schedulers] == [8, 8]
    assert [s.get_last_lr()[0] for s in schedulers] == [0.0, 0.0]


def test_same_seed_same_weights(tmp_path: Path, fashion_root: Path) -> None:
    def run() -> torch.Tensor:
        pl.seed_everything(0, verbose=False)
        module = tiny_module()
        t = quiet_trainer(tmp_path, max_steps=4, limit_val_batches=0, deterministic=True)
        t.fit(module, datamodule=fashion_data(fashion_root, batch_size=16, train_limit=64))
        return flat_params(module)

    first = run()
    assert torch.equal(first, run())
    pl.seed_everything(0, verbose=False)
    assert not torch.equal(first, flat_params(tiny_module()))  # the weights did train


def test_wandb_logger_goes_offline_without_credentials(
    tmp_path: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No API key, no netrc, no WANDB_MODE: the run is written offline, nothing asks for an account."""
    from glowapp.loggers import WandbLogger

    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)
    logger = WandbLogger(save_dir=str(tmp_path), project="glowapp")
    assert logger._offline
    pl.seed_everything(0)
    t = quiet_trainer(
        tmp_path, max_steps=2, logger=logger, limit_val_batches=1, val_check_interval=2
    )
    t.fit(tiny_module(), datamodule=fashion_data(fashion_root))
    logger.experiment.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
