"""Training time as a logged metric, so a run's curves can be drawn against time."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


class TrainingClock(Callback):
    """Log ``time/train_hours``: the wall-clock hours this run has trained, summed over resumes.

    The clock starts at the first training batch of each ``fit`` and advances at every batch end,
    so validation and checkpointing inside the run count, and the time between a stop and its
    resume does not. The total is saved in the checkpoint (callback state) and restored by
    ``--ckpt_path``: a run trained in pieces logs one continuous time axis.
    """

    def __init__(self) -> None:
        self.elapsed_s = 0.0
        self._last: float | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._last is None:
            self._last = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.elapsed_s += now - self._last
        self._last = now
        pl_module.log("time/train_hours", self.elapsed_s / 3600.0, on_step=True, on_epoch=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last = None

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed_s": self.elapsed_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.elapsed_s = float(state_dict["elapsed_s"])
