"""Polyak / exponential moving average of the weights, used for evaluation and sampling."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import WeightAveraging
from torch import Tensor


class EMA(WeightAveraging):
    """Keep ``θ_ema ← θ_ema + (1 − decay)·(θ − θ_ema)`` after every optimizer step.

    Lightning's :class:`~pytorch_lightning.callbacks.WeightAveraging` does the bookkeeping: the
    averaged weights are swapped in for validation, written as the checkpoint's ``state_dict``
    (the live weights go to ``current_model_state``, so resuming continues both), and copied into
    the module when training ends; the image callbacks render with them (:meth:`averaged_weights`). So ``GlowModule.load_from_checkpoint``, ``glowapp test``,
    ``glowapp sample`` and the other tools all use the averaged weights.

    Unlike Lightning's ``EMAWeightAveraging``, the average is taken with ``torch.lerp``, which
    leaves constant floating-point buffers (the LU 1×1 conv's permutation, signs and mask)
    bit-exact, and non-float buffers (ActNorm's ``initialized`` flag, counters) are copied rather
    than averaged. The first update (after the first optimizer step) copies the weights, so the
    average starts from the data-initialised ActNorm. Glow used Polyak averaging; Flow++ used
    ``decay = 0.999``.

    With ``warmup`` the decay of the ``n``-th update is ``min(decay, (1 + n) / (10 + n))``, so
    the average follows the fast early progress instead of lagging ``1 / (1 − decay)`` steps
    behind it — what makes EMA usable in runs of a few thousand steps.

    Args:
        decay: weight of the old average per step, in ``[0, 1)``; the average spans about
            ``1 / (1 − decay)`` steps.
        warmup: ramp the decay up from 0.1 as above.
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        super().__init__(use_buffers=True, avg_fn=self._average)

    def decay_at(self, num_averaged: int) -> float:
        """The decay used by the update that follows ``num_averaged`` earlier ones."""
        return (
            min(self.decay, (1 + num_averaged) / (10 + num_averaged)) if self.warmup else self.decay
        )

    def _average(self, average: Tensor, current: Tensor, num_averaged: Tensor) -> Tensor:
        if not average.is_floating_point():
            return current
        return torch.lerp(
            average, current.to(average.dtype), 1.0 - self.decay_at(int(num_averaged))
        )

    @contextmanager
    def averaged_weights(self, pl_module: pl.LightningModule) -> Iterator[None]:
        """Within the block, ``pl_module`` holds the averaged weights (the live ones are restored after)."""
        if self._average_model is None:
            yield
            return
        self._swap_models(pl_module)
        _clear_caches(pl_module)
        try:
            yield
        finally:
            self._swap_models(pl_module)
            _clear_caches(pl_module)


def averaged_weights(
    trainer: pl.Trainer, pl_module: pl.LightningModule
) -> contextlib.AbstractContextManager[None]:
    """:meth:`EMA.averaged_weights` of the trainer's EMA callback, or a no-op without one."""
    for callback in trainer.callbacks:
        if isinstance(callback, EMA):
            return callback.averaged_weights(pl_module)
    return contextlib.nullcontext()


def _clear_caches(pl_module: pl.LightningModule) -> None:
    clear = getattr(pl_module, "clear_caches", None)
    if clear is not None:
        clear()
