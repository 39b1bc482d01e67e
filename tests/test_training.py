"""The training application: module, checkpoints, resume, mixed precision, DDP, non-finite steps."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from glowapp import GlowModule
from glowapp.callbacks import GlowCheckpoint
from glowapp.data import FashionMNISTDataModule

REPO = Path(__file__).resolve().parents[1]
TINY = dict(image_shape=(1, 28, 28), levels=2, steps=2, hidden=16, warmup_steps=2)


def tiny_data(tmp_path: Path, **kwargs) -> FashionMNISTDataModule:
    """Real Fashion-MNIST (from the Debian package), a few batches of it."""
    options = dict(
        root=str(tmp_path / "data"),
        batch_size=32,
        train_limit=128,
        val_limit=64,
        test_limit=64,
        download=False,
    )
    return FashionMNISTDataModule(**{**options, **kwargs})


def trainer(tmp_path: Path, **kwargs) -> pl.Trainer:
    options = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        deterministic=True,
    )
    return pl.Trainer(**{**options, **kwargs})


def flat_params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def fixed_batch(module: GlowModule) -> torch.Tensor:
    torch.manual_seed(123)
    return torch.randint(0, 256, (8, *module.image_shape), dtype=torch.uint8)


def test_fit_learns_and_logs(tmp_path: Path) -> None:
    pl.seed_everything(0)
    module = GlowModule(**TINY)
    t = trainer(tmp_path, max_steps=8, val_check_interval=4, enable_checkpointing=False)
    t.fit(module, datamodule=tiny_data(tmp_path))
    assert t.optimizers[0].defaults["fused"]
    assert {"train/bpd", "val/bpd"} <= set(t.callback_metrics)
    assert torch.isfinite(t.callback_metrics["val/bpd"])
    assert int(module.skipped_steps) == 0


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_fit_has_finite_loss(tmp_path: Path, precision: str) -> None:
    """The CPU twins of GPU mixed precision: a 16-mixed config runs on a CPU too (Lightning
    falls back to bf16 autocast there; on CUDA it uses float16 with a GradScaler). With
    gradient clipping, as the configs have it: Lightning cannot clip for a fused optimizer under
    mixed precision, so the module takes the multi-tensor Adam there (fused in 32-true)."""
    pl.seed_everything(0)
    module = GlowModule(**TINY)
    t = trainer(
        tmp_path,
        max_steps=6,
        precision=precision,
        gradient_clip_val=50.0,
        enable_checkpointing=False,
        limit_val_batches=1,
    )
    t.fit(module, datamodule=tiny_data(tmp_path))
    defaults = t.optimizers[0].defaults
    assert defaults["foreach"] and not defaults["fused"]
    assert torch.isfinite(t.callback_metrics["train/bpd"])
    assert torch.isfinite(t.callback_metrics["val/bpd"])
    assert int(module.skipped_steps) == 0
    # log-dets stay float32 under autocast
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    with torch.autocast("cpu", dtype=dtype):
        _, logdet = module.flow.encode(torch.randn(2, 1, 28, 28))
    assert logdet.dtype == torch.float32


def test_load_from_checkpoint_gives_identical_bpd(tmp_path: Path) -> None:
    pl.seed_everything(0)
    module = GlowModule(**TINY, coupling="additive", permutation="conv")
    t = trainer(tmp_path, max_steps=4, enable_checkpointing=False, limit_val_batches=0)
    t.fit(module, datamodule=tiny_data(tmp_path))
    path = tmp_path / "m.ckpt"
    t.save_checkpoint(path)
    loaded = GlowModule.load_from_checkpoint(path).eval()
    module.eval()
    batch = fixed_batch(module)
    with torch.no_grad():
        assert torch.equal(
            module.bits_per_dim(batch, noise=False), loaded.bits_per_dim(batch, noise=False)
        )
    assert bool(loaded.flow.levels[0].layers[1].layers[0].initialized)
    assert loaded.hparams.coupling == "additive"


def test_resume_continues_exactly(tmp_path: Path) -> None:
    """Resuming from the checkpoint written at step N of a 2N-step run reproduces its final weights.

    Exact at epoch boundaries: the data order is drawn from (seed, epoch) and the dequantisation
    noise from (seed, step), so nothing depends on the global RNG. (Mid-epoch, Lightning restarts
    a plain DataLoader's epoch; the step count is still right — see test_reliability.)
    """
    steps_per_epoch = 4  # 128 images / batch 32

    def run(ckpt_path: str | None = None) -> tuple[GlowModule, pl.Trainer]:
        pl.seed_everything(0)
        module = GlowModule(**TINY, lr_schedule="cosine")
        checkpoint = pl.callbacks.ModelCheckpoint(
            dirpath=tmp_path / "ckpt",
            filename="{step}",
            every_n_train_steps=steps_per_epoch,
            save_top_k=-1,
        )
        t = trainer(
            tmp_path, max_steps=2 * steps_per_epoch, limit_val_batches=0, callbacks=[checkpoint]
        )
        t.fit(module, datamodule=tiny_data(tmp_path), ckpt_path=ckpt_path)
        return module, t

    straight, t_straight = run()
    resumed, t_resumed = run(ckpt_path=str(tmp_path / "ckpt" / f"step={steps_per_epoch}.ckpt"))
    assert t_resumed.global_step == t_straight.global_step == 2 * steps_per_epoch
    torch.testing.assert_close(flat_params(resumed), flat_params(straight), rtol=0, atol=1e-6)
    lr = [t.optimizers[0].param_groups[0]["lr"] for t in (t_straight, t_resumed)]
    assert lr[0] == pytest.approx(lr[1])


def test_nonfinite_step_is_skipped_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pl.seed_everything(0)
    module = GlowModule(**TINY)
    real_log_prob = module.flow.log_prob
    calls = {"n": 0}

    def sometimes_nan(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        out = real_log_prob(x)
        return out * float("nan") if calls["n"] == 3 else out

    monkeypatch.setattr(module.flow, "log_prob", sometimes_nan)
    t = trainer(tmp_path, max_steps=4, enable_checkpointing=False, limit_val_batches=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(module, datamodule=tiny_data(tmp_path))
    assert int(module.skipped_steps) == 1
    assert any(
        "non-finite loss" in str(w.message) and "global step 2" in str(w.message) for w in caught
    )
    assert torch.isfinite(flat_params(module)).all()


def test_too_many_nonfinite_steps_stop_with_a_clear_error(tmp_path: Path) -> None:
    pl.seed_everything(0)
    module = GlowModule(**TINY, max_skipped_steps=2)
    t = trainer(tmp_path, max_steps=10, enable_checkpointing=False, limit_val_batches=0)
    with torch.no_grad():  # a broken coupling network: NaN everywhere from the first step
        module.flow.levels[0].layers[1].layers[2].net.net[0].bias.fill_(float("nan"))
    with (
        pytest.raises(FloatingPointError, match=r"global step 2.*ChannelCoupling"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        t.fit(module, datamodule=tiny_data(tmp_path))


def test_last_checkpoint_is_written_when_training_stops_between_intervals(tmp_path: Path) -> None:
    pl.seed_everything(0)
    checkpoint = GlowCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_last=True)
    t = trainer(tmp_path, max_steps=6, limit_val_batches=0, callbacks=[checkpoint])
    t.fit(GlowModule(**TINY), datamodule=tiny_data(tmp_path))
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 6
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "epoch=0-step=4.ckpt",
        "last.ckpt",
    ]


def test_unwritable_checkpoint_dir_fails_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    module = GlowModule(**TINY)
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=str(blocker / "ckpts"))
    t = trainer(tmp_path, max_steps=2, callbacks=[checkpoint])
    with pytest.raises(OSError, match="cannot write to"):
        t.fit(module, datamodule=tiny_data(tmp_path))
    assert module.global_step == 0


def _glowapp(
    *args: str, cwd: Path = REPO, timeout: int = 300, threads: int | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
    if threads is not None:  # torch reads it at start-up
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run(
        [sys.executable, "-m", "glowapp.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _tiny_overrides(tmp_path: Path) -> list[str]:
    """The quickstart config, shrunk; run from ``tmp_path`` so checkpoints/ and outputs/ land there."""
    return [
        "--config", str(REPO / "configs" / "glow_fashion_mnist.yaml"),
        "--model.steps", "2", "--model.hidden", "16",
        "--data.init_args.root", str(tmp_path / "data"), "--data.init_args.download", "false",
        "--data.init_args.batch_size", "16", "--data.init_args.train_limit", "64",
        "--data.init_args.val_limit", "32", "--data.init_args.test_limit", "32",
    ]  # fmt: skip


def test_cli_ddp_two_cpu_processes_then_test(tmp_path: Path) -> None:
    """`glowapp fit` with strategy=ddp on 2 CPU processes (gloo), then `glowapp test` on its checkpoint."""
    fit = _glowapp(
        "fit", *_tiny_overrides(tmp_path),
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--trainer.max_steps", "4", "--trainer.val_check_interval", "2",
        cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    last = tmp_path / "checkpoints" / "glow_fashion_mnist" / "last.ckpt"
    assert last.exists()
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["global_step"] == 4
    test = _glowapp("test", *_tiny_overrides(tmp_path), "--ckpt_path", str(last), cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "test/bpd" in test.stdout


def test_glowapp_help_lists_every_command() -> None:
    out = _glowapp("--help", timeout=120)
    assert out.returncode == 0
    for command in ("fit", "validate", "test", "sample", "interpolate", "inpaint", "score"):
        assert f"  {command} " in out.stdout


@pytest.mark.parametrize(
    "config", sorted(p.name for p in (REPO / "configs").glob("*.yaml") if "_" in p.stem)
)
def test_every_config_parses(config: str) -> None:
    out = _glowapp("fit", "--config", f"configs/{config}", "--print_config", timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "class_path" in out.stdout


def test_wandb_logger_goes_offline_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No API key, no netrc, no WANDB_MODE: the run is written offline, nothing asks for an account."""
    from glowapp.loggers import WandbLogger

    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(save_dir=str(tmp_path), project="glowapp")
    assert logger._offline
    pl.seed_everything(0)
    t = trainer(
        tmp_path,
        max_steps=2,
        logger=logger,
        limit_val_batches=1,
        val_check_interval=2,
        enable_checkpointing=False,
    )
    t.fit(GlowModule(**TINY), datamodule=tiny_data(tmp_path))
    logger.experiment.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
