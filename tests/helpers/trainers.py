"""A quiet CPU ``pl.Trainer`` for tests: no logger, checkpoints, progress bar or model summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl


def quiet_trainer(root: Path, **overrides: Any) -> pl.Trainer:
    """A CPU trainer writing only under ``root`` (its ``default_root_dir``); ``overrides`` are
    further ``pl.Trainer`` arguments (``max_steps=3``, ``limit_val_batches=0``, …)."""
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": str(root),
    }
    return pl.Trainer(**(options | overrides))
