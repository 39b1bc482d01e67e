"""Running ``glowapp fit|validate|test`` in tests: a tiny config overlay whose every output lands
in a temporary folder, the console script in a subprocess, and the one-line error it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
QUICKSTART = CONFIGS / "glow_fashion_mnist.yaml"


def tiny_overlay(directory: Path, data_root: Path, save_every: int = 2, **trainer: Any) -> Path:
    """Write ``directory/tiny.yaml``, to stack on the quickstart config: a 2×2-step width-16 Glow,
    64 training images in batches of 16 (4 steps per epoch), 4 steps with validation every 2,
    and every output under ``directory``: CSV logs in ``logs/``, checkpoints in ``ckpt/``
    (``best-{step}`` by val/bpd and ``last.ckpt``, every ``save_every`` steps). ``trainer``
    overrides trainer options."""
    config = {
        "model": {
            "flow": {"init_args": {"levels": 2, "steps": 2, "hidden": 16, "coupling": "affine"}},
            "lr": 5e-3,
            "warmup_steps": 2,
        },
        "data": {
            "init_args": {
                "root": str(data_root),
                "download": False,
                "batch_size": 16,
                "train_limit": 64,
                "val_limit": 32,
                "test_limit": 32,
            }
        },
        "trainer": {
            "accelerator": "cpu",
            "max_steps": 4,
            "val_check_interval": 2,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": {
                "class_path": "pytorch_lightning.loggers.CSVLogger",
                "init_args": {"save_dir": str(directory / "logs"), "name": "tiny"},
            },
            "callbacks": [
                {"class_path": "glowapp.callbacks.SkipNonFiniteSteps"},
                {
                    "class_path": "glowapp.callbacks.GlowCheckpoint",
                    "init_args": {
                        "dirpath": str(directory / "ckpt"),
                        "filename": "best-{step}",
                        "monitor": "val/bpd",
                        "save_top_k": 1,
                        "save_last": True,
                        "every_n_train_steps": save_every,
                    },
                },
                {"class_path": "pytorch_lightning.callbacks.LearningRateMonitor"},
            ],
            **trainer,
        },
    }
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def tiny_fit_args(directory: Path, data_root: Path, *extra: str) -> list[str]:
    """``--config`` arguments of the quickstart config with :func:`tiny_overlay` on top."""
    return [
        "--config",
        str(QUICKSTART),
        "--config",
        str(tiny_overlay(directory, data_root)),
        *extra,
    ]


def run_glowapp(
    *args: str, cwd: Path, timeout: int = 300, threads: int = 1
) -> subprocess.CompletedProcess[str]:
    """``python -m glowapp.cli ARGS`` in ``cwd`` (a temporary folder: relative outputs land
    there), offline, with ``threads`` OpenMP threads (read by torch at start-up)."""
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": str(threads),
    }
    return subprocess.run(
        [sys.executable, "-m", "glowapp.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The ``glowapp: error: …`` line ending stderr, after checking no traceback came with it."""
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("glowapp: error:"), err
    assert not any("Traceback" in line for line in err)
    return err[-1]
