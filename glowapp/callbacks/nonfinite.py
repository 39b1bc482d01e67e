"""The non-finite step policy: skip the update, say where it came from, give up after too many."""

from __future__ import annotations

import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from glowapp.diagnostics import first_nonfinite_layer


class SkipNonFiniteSteps(pl.Callback):
    """Skip optimizer steps whose loss or gradients are not finite.

    A skipped step leaves the parameters *and* the optimizer's moment estimates untouched (the
    gradients are dropped before the update; Adam skips parameters without gradients). The
    decision is taken jointly by every rank, so DDP ranks stay in lock-step. Each skip is
    counted in ``train/skipped_steps`` and warned about, naming the step and — for a non-finite
    loss — the first layer of the flow that produced a non-finite value
    (:func:`glowapp.diagnostics.first_nonfinite_layer`). After ``max_skipped_steps`` skips,
    training stops with a ``FloatingPointError`` that says what to change.

    Under fp16 mixed precision the loss scaler already skips steps whose gradients overflowed and
    lowers its scale; those are left to it and not counted, unless the loss itself is non-finite.
    The count is saved in checkpoints, so a resumed run keeps it.

    Args:
        max_skipped_steps: how many non-finite steps to skip before failing.
    """

    def __init__(self, max_skipped_steps: int = 20) -> None:
        if max_skipped_steps < 0:
            raise ValueError(f"max_skipped_steps must be >= 0, got {max_skipped_steps}")
        self.max_skipped_steps = max_skipped_steps
        self.skipped_steps = 0
        self._batch: Any = None
        self._loss: Tensor | None = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch = batch

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor
    ) -> None:
        self._loss = loss.detach()

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        bad_loss = self._loss is not None and not bool(torch.isfinite(self._loss))
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        bad_grads = (
            scaler is None
            and bool(grads)
            and not bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all())
        )
        if not trainer.strategy.reduce_boolean_decision(bad_loss or bad_grads, all=False):
            return
        optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        what = f"non-finite loss ({float(self._loss)})" if bad_loss else "non-finite gradients"
        message = f"{what} at global step {trainer.global_step}"
        if bad_loss:
            message += f"; first non-finite value from {self._locate(pl_module)}"
        message += f". Step skipped ({self.skipped_steps}/{self.max_skipped_steps})."
        if self.skipped_steps > self.max_skipped_steps:
            raise FloatingPointError(
                message + " Too many non-finite steps: lower the learning rate, raise "
                "warmup_steps, enable gradient clipping (--trainer.gradient_clip_val) or use "
                "additive coupling."
            )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        pl_module.log(
            "train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False
        )

    def _locate(self, pl_module: pl.LightningModule) -> str:
        """The first layer with a non-finite output on this step's batch, or ``the loss``."""
        flow = getattr(pl_module, "flow", None)
        preprocess = getattr(pl_module, "preprocess", None)
        if flow is None or preprocess is None or self._batch is None:
            return "the loss"
        images, labels = self._batch[0], self._batch[1]
        x, _ = preprocess.encode_images(images.to(pl_module.device), noise=True)
        labels = labels.to(pl_module.device) if flow.num_classes else None
        return first_nonfinite_layer(flow, x, labels) or "the loss"

    def state_dict(self) -> dict[str, Any]:
        return {"skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))
