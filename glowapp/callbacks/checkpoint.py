"""Lightning's ModelCheckpoint made safe: atomic writes, a disk check, and no stale ``last.ckpt``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from glowapp.atomic import atomic_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint through :func:`glowapp.atomic.atomic_file`: a crash mid-write never
    corrupts the previous checkpoint of that name."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        with atomic_file(path) as f:
            torch.save(checkpoint, f)


def check_writable(directory: str | os.PathLike, min_free_bytes: int = 0) -> None:
    """Fail early, with a clear message, if ``directory`` cannot take files of ``min_free_bytes``."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as err:
        raise OSError(
            f"cannot write to {directory}: {err.strerror or err}. Choose another directory."
        ) from err
    free = shutil.disk_usage(directory).free
    if free < min_free_bytes:
        raise OSError(
            f"not enough free disk space in {directory}: {free / 2**20:.1f} MiB free, a checkpoint "
            f"needs about {min_free_bytes / 2**20:.1f} MiB. Free some space or choose another directory."
        )


def earlier_run(dirpath: str | os.PathLike[str]) -> list[Path]:
    """The checkpoints (``*.ckpt``) an earlier run left in ``dirpath`` (none if it is absent)."""
    return sorted(Path(dirpath).glob("*.ckpt"))


def refusal(dirpath: str | os.PathLike[str], earlier: list[Path]) -> str:
    """The one line that refuses a fresh fit into ``dirpath``, which holds ``earlier``."""
    names = ", ".join(p.name for p in earlier[:3]) + ("…" if len(earlier) > 3 else "")
    return (
        f"{dirpath} already holds a run ({names}); resume it with "
        f"--ckpt_path {Path(dirpath) / 'last.ckpt'}, or start over with "
        "--start_over true (deletes those checkpoints) or another checkpoint folder"
    )


class GlowCheckpoint(ModelCheckpoint):
    """:class:`~pytorch_lightning.callbacks.ModelCheckpoint` that never loses or hides a run.

    * **Atomic writes.** At setup the trainer's plain ``TorchCheckpointIO`` is replaced by
      :class:`AtomicCheckpointIO`: a crash mid-write never corrupts the
      previous checkpoint of that name.
    * **Disk check.** A fit refuses to start, with one line, if ``dirpath`` cannot be written or
      has no room for two checkpoints (parameters plus Adam's two moments each).
    * **One run per folder.** A fresh fit (no ``--ckpt_path``) into a folder that already holds
      ``*.ckpt`` files stops before training with a message naming the folder and both ways on:
      resume with ``--ckpt_path DIR/last.ckpt``, or ``start_over`` (``glowapp fit … --start_over
      true``), which deletes the old run's checkpoints first. Lightning would otherwise write
      ``last-v1.ckpt`` beside the old ``last.ckpt`` and every tool would silently use the old run.
    * **Current ``last.ckpt``.** Lightning writes ``last.ckpt`` at the end of training only if
      nothing was ever saved, so a run stopped by ``max_time`` or ``max_steps`` between two
      ``every_n_train_steps`` saves would keep one up to an interval old; and it skips the
      ``every_n_train_steps`` saves until the monitored metric (``val/bpd``) first exists. With
      ``save_last`` this writes ``last.ckpt`` on schedule before the first validation too, and
      when training ends at a step not saved yet.

    Args:
        start_over: delete the checkpoints of an earlier run in ``dirpath`` before a fresh fit.
        **kwargs: :class:`ModelCheckpoint`'s arguments (``dirpath``, ``monitor``, ``save_last``…).
    """

    def __init__(self, *args: Any, start_over: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_over = start_over

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        strategy = trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = AtomicCheckpointIO()
        if stage == "fit" and self.dirpath and trainer.is_global_zero:
            # Parameters + Adam's two moments, in float32, plus slack; room for two of them.
            size = 4 * sum(p.numel() for p in pl_module.parameters()) * 3 + 2**20
            check_writable(self.dirpath, 2 * size)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Here, unlike in setup, trainer.ckpt_path tells a resumed run from a fresh one. (The
        # CLI refuses earlier, before the trainer starts: this covers runs made in Python.)
        if self.dirpath and trainer.ckpt_path is None:
            earlier = earlier_run(self.dirpath)
            if earlier and not self.start_over:
                raise FileExistsError(refusal(self.dirpath, earlier))
            if earlier and trainer.is_global_zero:
                for path in earlier:
                    path.unlink()
            trainer.strategy.barrier("glowapp_start_over")
        super().on_train_start(trainer, pl_module)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        # While the monitored metric does not exist yet (before the first validation), Lightning
        # defers a step's save, last.ckpt included: a crash then would lose every step. Write
        # last.ckpt on schedule anyway, without marking the step saved, so the deferred save
        # (best and last) still happens after the validation.
        if (
            self.save_last
            and self._defer_save_until_validation
            and self._every_n_train_steps >= 1
            and trainer.global_step % self._every_n_train_steps == 0
            and not self._should_skip_saving_checkpoint(trainer)
        ):
            saved_step = self._last_global_step_saved
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._last_global_step_saved = saved_step

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (
            self.save_last
            and self._last_global_step_saved != trainer.global_step
            and not trainer.sanity_checking
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)
