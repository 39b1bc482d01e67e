"""Bad input gets one clear error; faults lose nothing; trained models stay numerically sound."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from trained import Trained

from glowapp import GlowModule
from glowapp.checkpointing import AtomicCheckpointIO, CheckpointFileError, check_checkpoint_file
from glowapp.cli import main
from glowapp.data import FashionMNISTDataModule
from glowapp.module import IncompatibleCheckpointError

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "glow_fashion_mnist.yaml")


def _fit_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "fit", "--config", CONFIG, "--model.steps", "2", "--model.hidden", "16",
        "--data.init_args.root", str(tmp_path / "data"), "--data.init_args.download", "false",
        "--data.init_args.batch_size", "16", "--data.init_args.train_limit", "64",
        "--data.init_args.val_limit", "32", "--trainer.max_steps", "2", *extra,
    ]  # fmt: skip


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("glowapp: error:"), err
    assert not any("Traceback" in line for line in err)
    return err[-1]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--model.levels", "3"], "cannot be squeezed"),
        (["--model.hidden", "0"], "hidden width must be positive"),
        (["--model.n_bits", "9"], "n_bits must be an integer in 1..8"),
        (["--model.coupling", "bogus"], "coupling must be"),
        (["--trainer.logger", "false", "--trainer.val_check_interval", "2"], "LearningRateMonitor"),
        (
            ["--data.init_args.root", "/proc/nonexistent/x", "--data.init_args.system_dir", ""],
            "Fashion-MNIST",
        ),
    ],
)
def test_impossible_config_values_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: list[str], expected: str
) -> None:
    assert main(_fit_args(tmp_path, *override)) == 1
    assert expected in capsys.readouterr().err


def test_unknown_config_key_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(_fit_args(tmp_path, "--model.levelz", "3"))
    assert exit_info.value.code == 2


@pytest.mark.parametrize("kind", ["missing", "text", "truncated"])
def test_bad_checkpoint_path_exits_1(
    tmp_path: Path, trained_model: Trained, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "bad.ckpt"
    if kind == "text":
        path.write_text("hello")
    elif kind == "truncated":
        data = trained_model.checkpoint.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    assert main(["test", "--config", CONFIG, "--ckpt_path", str(path)]) == 1
    line = _one_error_line(capsys)
    assert str(path) in line
    with pytest.raises(CheckpointFileError):
        check_checkpoint_file(path)


def test_checkpoint_of_another_architecture_names_the_difference(trained_model: Trained) -> None:
    other = GlowModule(image_shape=(1, 28, 28), levels=2, steps=2, hidden=16)
    state = torch.load(trained_model.checkpoint, map_location="cpu", weights_only=False)
    with pytest.raises(IncompatibleCheckpointError, match=r"not in model: .*steps=4 \(model: 2\)"):
        other.on_load_checkpoint(state)
    with pytest.raises(IncompatibleCheckpointError, match="hidden=32"):
        other.on_load_checkpoint(state)


def test_atomic_save_keeps_the_previous_checkpoint_on_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    def crash_mid_write(obj: object, f) -> None:  # type: ignore[no-untyped-def]
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """Checkpoints and images are readable as a plain ``open`` would make them (umask 022:
    0644), not private like the temporary files they start as."""
    from glowapp.generate import write_atomically

    old = os.umask(0o022)
    try:
        AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
        write_atomically(tmp_path / "out" / "samples.png", b"png")
    finally:
        os.umask(old)
    for path in (tmp_path / "last.ckpt", tmp_path / "out" / "samples.png"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)


def test_sigkill_mid_run_resumes_from_last_checkpoint(tmp_path: Path) -> None:
    """A real training process killed with SIGKILL resumes from last.ckpt and finishes its steps."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
    args = [
        sys.executable, "-m", "glowapp.cli", *_fit_args(tmp_path)[:-2],
        "--trainer.max_steps", "40", "--trainer.val_check_interval", "1000", "--trainer.limit_val_batches", "0",
    ]  # fmt: skip
    ckpt_dir = tmp_path / "checkpoints" / "glow_fashion_mnist"
    last = ckpt_dir / "last.ckpt"
    # checkpoints every 200 steps by default; every 5 here, via the quickstart config's callback list
    args += ["--trainer.callbacks", "pytorch_lightning.callbacks.ModelCheckpoint",
             "--trainer.callbacks.dirpath", str(ckpt_dir), "--trainer.callbacks.save_last", "true",
             "--trainer.callbacks.every_n_train_steps", "5", "--trainer.callbacks.save_top_k", "0"]  # fmt: skip
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 240
    step = 0
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
            if step >= 10:
                break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 10 <= saved < 40
    resumed = subprocess.run(
        [*args, "--ckpt_path", str(last)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 40


def test_unwritable_output_directory_is_reported_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    args = _fit_args(tmp_path, "--trainer.callbacks", "pytorch_lightning.callbacks.ModelCheckpoint",
                     "--trainer.callbacks.dirpath", str(blocker / "ckpt"))  # fmt: skip
    assert main(args) == 1
    assert "cannot write to" in _one_error_line(capsys)


def test_same_seed_same_weights(tmp_path: Path) -> None:
    def run() -> torch.Tensor:
        pl.seed_everything(0, verbose=False)
        module = GlowModule(image_shape=(1, 28, 28), levels=2, steps=2, hidden=16)
        data = FashionMNISTDataModule(
            root=str(tmp_path / "data"), batch_size=16, train_limit=64, download=False
        )
        trainer = pl.Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, limit_val_batches=0, deterministic=True)  # fmt: skip
        trainer.fit(module, data)
        return torch.cat([p.detach().flatten() for p in module.parameters()])

    assert torch.equal(run(), run())


def test_trained_model_inverse_drift_and_finite_samples(trained_model: Trained) -> None:
    module = GlowModule.load_from_checkpoint(trained_model.checkpoint, map_location="cpu").eval()
    images = trained_model.test_images(64)
    with torch.no_grad():
        x, _ = module.preprocess.encode_images(images, noise=True)
        latents, _ = module.flow.encode(x)
        drift = (module.flow.decode(latents) - x).abs().max().item()
        torch.manual_seed(0)
        samples = module.flow.sample(256, temperature=1.0)
    assert drift < 1e-3
    assert torch.isfinite(samples).all(), (
        f"{(~torch.isfinite(samples)).flatten(1).any(1).sum()} non-finite samples"
    )


def test_wrong_images_for_the_module_are_rejected(trained_model: Trained) -> None:
    module = GlowModule.load_from_checkpoint(trained_model.checkpoint, map_location="cpu").eval()
    with pytest.raises(ValueError, match=r"expected images of shape \[B, 1, 28, 28\]"):
        module.bits_per_dim(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        module.bits_per_dim(torch.full((2, 1, 28, 28), 2.0))
    with pytest.raises(TypeError, match="uint8"):
        module.bits_per_dim(torch.zeros(2, 1, 28, 28, dtype=torch.int32))
