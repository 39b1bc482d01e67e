"""TrainingClock logs the cumulative training time and carries it across a resume."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from helpers.training import fashion_data, tiny_module
from pytorch_lightning.loggers import CSVLogger

from glowapp.callbacks import TrainingClock


def _fit(
    tmp_path: Path, root: Path, max_steps: int, ckpt_path: Path | None, version: int
) -> TrainingClock:
    clock = TrainingClock()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        limit_val_batches=0,
        log_every_n_steps=1,
        logger=CSVLogger(tmp_path / "logs", name="run", version=version),
        callbacks=[clock],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(tiny_module(), datamodule=fashion_data(root), ckpt_path=ckpt_path)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    return clock


def test_time_is_logged_and_survives_a_resume(tmp_path: Path, fashion_root: Path) -> None:
    pl.seed_everything(0)
    first = _fit(tmp_path, fashion_root, 2, None, version=0)
    assert first.elapsed_s > 0
    second = _fit(tmp_path, fashion_root, 4, tmp_path / "last.ckpt", version=1)
    assert second.elapsed_s > first.elapsed_s  # continued from the saved total, not from zero

    hours = [_logged_hours(tmp_path / "logs" / "run" / f"version_{v}") for v in (0, 1)]
    assert len(hours[0]) == 2 and len(hours[1]) == 2  # one row per step, steps 1-2 and 3-4
    assert hours[0] + hours[1] == sorted(hours[0] + hours[1])  # one continuous axis
    assert hours[1][0] > hours[0][-1] > 0


def _logged_hours(log_dir: Path) -> list[float]:
    rows = (log_dir / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("time/train_hours")
    return [float(row.split(",")[column]) for row in rows[1:] if row.split(",")[column]]
