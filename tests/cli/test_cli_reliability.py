"""``glowapp fit|test`` with bad input: one clear line and exit 1 (2 for usage errors); faults
lose nothing: a run killed with SIGKILL resumes from last.ckpt."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.fit_cli import QUICKSTART, one_error_line, run_glowapp, tiny_fit_args, tiny_overlay
from helpers.generation import tiny_glow, write_checkpoint

from glowapp.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--model.flow.levels", "3"], "cannot be squeezed"),
        (["--model.flow.hidden", "0"], "hidden width must be positive"),
        (["--model.preprocessing.n_bits", "9"], "n_bits must be an integer in 1..8"),
        (["--model.flow.coupling", "bogus"], "coupling must be"),
        (["--trainer.logger", "false"], "LearningRateMonitor"),
        (
            ["--data.init_args.root", "/proc/nonexistent/x", "--data.init_args.system_dir", ""],
            "Fashion-MNIST",
        ),
    ],
)
def test_impossible_config_values_exit_1_with_one_line(
    tmp_path: Path,
    fashion_root: Path,
    capsys: pytest.CaptureFixture[str],
    override: list[str],
    expected: str,
) -> None:
    assert main(["fit", *tiny_fit_args(tmp_path, fashion_root, *override)]) == 1
    if expected == "Fashion-MNIST":  # the one error line is followed by where to get the data
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith("glowapp: error: Fashion-MNIST data set not found")
        assert not any("Traceback" in line for line in err)
    else:
        assert expected in one_error_line(capsys)
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").iterdir())


@pytest.mark.parametrize("key", ["--model.levelz", "--model.flow.levelz"])
def test_unknown_config_key_is_a_usage_error(tmp_path: Path, fashion_root: Path, key: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *tiny_fit_args(tmp_path, fashion_root, key, "3")])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("kind", ["missing", "text", "truncated"])
def test_bad_checkpoint_path_exits_1(
    tmp_path: Path,
    fashion_root: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    path = tmp_path / "bad.ckpt"
    if kind == "text":
        path.write_text("hello")
    elif kind == "truncated":
        data = write_checkpoint(tiny_glow(), tmp_path / "good.ckpt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    args = tiny_fit_args(tmp_path, fashion_root, "--ckpt_path", str(path))
    assert main(["test", *args]) == 1
    assert str(path) in one_error_line(capsys)


def test_unwritable_checkpoint_folder_is_reported_before_training(
    tmp_path: Path,
    fashion_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "ckpt").write_text("a file where the checkpoint folder should be")
    assert main(["fit", *tiny_fit_args(tmp_path, fashion_root)]) == 1
    assert f"cannot write to {tmp_path / 'ckpt'}" in one_error_line(capsys)


def test_sigkill_mid_run_resumes_from_last_checkpoint(tmp_path: Path, fashion_root: Path) -> None:
    """A real training process killed with SIGKILL resumes from last.ckpt and finishes its steps."""
    overlay = tiny_overlay(tmp_path, fashion_root, save_every=5, max_steps=40, limit_val_batches=0)
    # A wider, deeper flow than the overlay's (~0.1 s a step), so the run outlasts the polling.
    wider = [
        "--model.flow.hidden",
        "64",
        "--model.flow.steps",
        "4",
        "--data.init_args.batch_size",
        "32",
    ]
    config = ["--config", str(QUICKSTART), "--config", str(overlay), *wider]
    args = [sys.executable, "-m", "glowapp.cli", "fit", *config]
    last = tmp_path / "ckpt" / "last.ckpt"
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    step = 0
    while time.time() < deadline and proc.poll() is None and step < 10:
        if last.exists():
            step = int(torch.load(last, map_location="cpu", weights_only=True)["global_step"])
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = int(torch.load(last, map_location="cpu", weights_only=True)["global_step"])
    assert 10 <= saved < 40
    resumed = run_glowapp("fit", *config, "--ckpt_path", str(last), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert int(torch.load(last, map_location="cpu", weights_only=True)["global_step"]) == 40
