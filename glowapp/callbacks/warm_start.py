"""Start a new run from another run's weights (fine-tuning, or a conditional model from an
unconditional one)."""

from __future__ import annotations

import os

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

from glowapp.checkpointing import CheckpointError, read_checkpoint


class WarmStart(Callback):
    """Copy the weights of ``checkpoint`` into the module before the first training step.

    Every tensor of the checkpoint's ``state_dict`` must exist in the module with the same shape
    (otherwise one :class:`~glowapp.checkpointing.CheckpointError` names the first mismatches);
    the module's tensors the checkpoint lacks keep their initialisation and are listed in one
    line. A class-conditional Glow warm-started from an unconditional one therefore begins
    exactly at the unconditional model: the label embedding of its top prior is zero-initialised,
    so ``p(x | y) = p(x)`` at step 0, and only the classifier head starts from scratch.

    The weights are loaded in ``setup``, so a run resumed with ``--ckpt_path`` still continues
    from its own checkpoint (Lightning restores it afterwards), and ActNorm keeps the loaded
    statistics (their ``initialized`` flags come with them).

    Args:
        checkpoint: a glowapp ``.ckpt`` (full or weights-only); its ``state_dict`` is used, which
            holds the averaged weights when the run used :class:`~glowapp.callbacks.EMA`.
    """

    def __init__(self, checkpoint: str | os.PathLike[str]) -> None:
        self.checkpoint = checkpoint

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        _, loaded = read_checkpoint(self.checkpoint)
        source = loaded["state_dict"]
        target = pl_module.state_dict()
        unknown = [key for key in source if key not in target]
        reshaped = [
            f"{key} {tuple(source[key].shape)} vs {tuple(target[key].shape)}"
            for key in source
            if key in target and source[key].shape != target[key].shape
        ]
        if unknown or reshaped:
            problems = ([f"not in this model: {', '.join(unknown[:4])}"] if unknown else []) + (
                [f"other shape: {', '.join(reshaped[:4])}"] if reshaped else []
            )
            raise CheckpointError(
                "cannot warm-start from a different architecture (" + "; ".join(problems) + ")",
                self.checkpoint,
            )
        pl_module.load_state_dict(source, strict=False)
        new = [key for key in target if key not in source]
        rank_zero_info(
            f"Warm start: {len(source)} tensors from {self.checkpoint}"
            + (f"; initialised here: {', '.join(new)}" if new else "")
        )
