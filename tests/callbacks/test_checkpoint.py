"""GlowCheckpoint: atomic writes, the disk check before training, a current ``last.ckpt``, and one
run per folder (refused, started over, or resumed)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, tiny_module

from glowapp.atomic import write_atomically
from glowapp.callbacks import GlowCheckpoint
from glowapp.callbacks.checkpoint import AtomicCheckpointIO

pytestmark = pytest.mark.usefixtures("single_thread")


def fit(
    root: Path, data_root: Path, checkpoint: GlowCheckpoint, **options: Any
) -> tuple[pl.Trainer, pl.LightningModule]:
    """A tiny fit (4 steps per epoch, no validation unless ``limit_val_batches`` is given) saving
    through ``checkpoint`` (one of the ``callbacks`` when they are given)."""
    pl.seed_everything(0)
    module = tiny_module()
    ckpt_path = options.pop("ckpt_path", None)
    options = {"callbacks": [checkpoint], "limit_val_batches": 0} | options
    t = quiet_trainer(root, enable_checkpointing=True, **options)
    t.fit(module, datamodule=fashion_data(data_root), ckpt_path=ckpt_path)
    return t, module


def saved_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def test_last_checkpoint_is_written_when_training_stops_between_intervals(
    tmp_path: Path, fashion_root: Path
) -> None:
    checkpoint = GlowCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_last=True)
    t, _ = fit(tmp_path, fashion_root, checkpoint, max_steps=6)
    assert isinstance(t.strategy.checkpoint_io, AtomicCheckpointIO)
    assert saved_step(tmp_path / "ckpt" / "last.ckpt") == 6
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "epoch=0-step=4.ckpt",
        "last.ckpt",
    ]


def test_last_checkpoint_is_written_on_schedule_before_the_first_validation(
    tmp_path: Path, fashion_root: Path
) -> None:
    """Monitoring val/bpd (the configs' setting), Lightning defers every save until the metric
    exists; last.ckpt still follows every_n_train_steps, and the best one comes after validation."""
    folder = tmp_path / "ckpt"
    last_seen: list[int] = []

    class WatchLast(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
            last = folder / "last.ckpt"
            last_seen.append(saved_step(last) if last.exists() else -1)

    checkpoint = GlowCheckpoint(
        dirpath=folder, filename="best-{step}", monitor="val/bpd", save_last=True,
        every_n_train_steps=2,
    )  # fmt: skip
    fit(
        tmp_path, fashion_root, checkpoint, max_steps=8, limit_val_batches=1,
        check_val_every_n_epoch=2, num_sanity_val_steps=0, callbacks=[checkpoint, WatchLast()],
    )  # fmt: skip
    assert last_seen == [-1, -1, 2, 2, 4, 4, 6, 6]
    assert sorted(p.name for p in folder.iterdir()) == ["best-step=8.ckpt", "last.ckpt"]
    assert saved_step(folder / "last.ckpt") == 8


def test_unwritable_checkpoint_dir_fails_before_training(
    tmp_path: Path, fashion_root: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    checkpoint = GlowCheckpoint(dirpath=str(blocker / "ckpts"))
    with pytest.raises(OSError, match=f"cannot write to {blocker / 'ckpts'}: .*another directory"):
        fit(tmp_path, fashion_root, checkpoint, max_steps=2)


def test_a_full_disk_fails_before_training(
    tmp_path: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Room for two checkpoints (weights and Adam's two moments each) is checked at setup."""
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=2**20))
    seen: list[int] = []

    class Steps(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
            seen.append(trainer.global_step)

    checkpoint = GlowCheckpoint(dirpath=tmp_path / "ckpt")
    with pytest.raises(OSError, match=r"not enough free disk space .*1\.0 MiB free"):
        fit(tmp_path, fashion_root, checkpoint, max_steps=2, callbacks=[checkpoint, Steps()])
    assert seen == []


def test_a_second_fresh_fit_into_the_folder_is_refused_until_started_over(
    tmp_path: Path, fashion_root: Path
) -> None:
    folder = tmp_path / "ckpt"

    def checkpoint(**options: Any) -> GlowCheckpoint:
        return GlowCheckpoint(
            dirpath=folder, filename="best-{step}", monitor="train/bpd", save_last=True,
            every_n_train_steps=2, **options,
        )  # fmt: skip

    fit(tmp_path, fashion_root, checkpoint(), max_steps=4)
    first = sorted(p.name for p in folder.iterdir())
    assert "last.ckpt" in first and saved_step(folder / "last.ckpt") == 4

    with pytest.raises(FileExistsError) as info:
        fit(tmp_path, fashion_root, checkpoint(), max_steps=3)
    assert str(info.value) == (
        f"{folder} already holds a run ({', '.join(first)}); resume it with --ckpt_path "
        f"{folder / 'last.ckpt'}, or start over with --start_over true (deletes those "
        "checkpoints) or another checkpoint folder"
    )
    assert sorted(p.name for p in folder.iterdir()) == first  # nothing touched

    fit(tmp_path, fashion_root, checkpoint(start_over=True), max_steps=3)
    names = sorted(p.name for p in folder.iterdir())
    assert not any("-v" in name for name in names), names
    assert saved_step(folder / "last.ckpt") == 3

    # Resuming is not a fresh fit: it continues in the same folder.
    fit(tmp_path, fashion_root, checkpoint(), max_steps=5, ckpt_path=folder / "last.ckpt")
    assert saved_step(folder / "last.ckpt") == 5
    assert not any("-v" in p.name for p in folder.iterdir())


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
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """Checkpoints and images are readable as a plain ``open`` would make them (umask 022:
    0644), not private like the temporary files they start as."""
    old = os.umask(0o022)
    try:
        AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
        write_atomically(tmp_path / "out" / "samples.png", b"png")
    finally:
        os.umask(old)
    for path in (tmp_path / "last.ckpt", tmp_path / "out" / "samples.png"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)
