"""Lightning's ModelCheckpoint, plus a final ``last.ckpt`` when a run stops between save intervals."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class GlowCheckpoint(ModelCheckpoint):
    """:class:`~pytorch_lightning.callbacks.ModelCheckpoint` that never leaves ``last.ckpt`` stale.

    Lightning writes ``last.ckpt`` at the end of training only if nothing was ever saved, so a
    run stopped by ``max_time`` or ``max_steps`` between two ``every_n_train_steps`` saves keeps
    a ``last.ckpt`` up to one interval old, and the tools then use an older model than the one
    trained. With ``save_last`` this also saves it when training ends at a step not saved yet.
    Writes go through the trainer's checkpoint IO, so they are atomic (see
    :class:`glowapp.checkpointing.AtomicCheckpointIO`).
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (
            self.save_last
            and self._last_global_step_saved != trainer.global_step
            and not trainer.sanity_checking
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)
