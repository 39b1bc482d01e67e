"""What the benchmarks time: glowapp's own :class:`~glowapp.GlowModule`, driven as the CLI drives it.

* **train** — ``glowapp fit``'s step: the module's ``configure_optimizers`` (Adam from
  :func:`glowapp.optim.make_adam`, the LR schedule from :func:`glowapp.optim.make_schedule`),
  then Lightning's automatic optimisation of one batch through the module's own hooks:
  ``optimizer_step(closure)``, the closure running ``training_step`` → ``optimizer_zero_grad``
  → ``backward``; then the per-step LR schedule;
* **eval** — ``glowapp test``'s step: ``test_step`` in eval mode under ``torch.inference_mode``
  (as ``Trainer.test`` runs it): dequantise with the batch's noise → bits/dim → the metric;
* **sample** — ``glowapp sample``'s computation: :func:`glowapp.generate.sample_grid` at
  temperature 0.7 (seeded noise → ``decode`` → images), without the PNG.

A barebones :class:`~pytorch_lightning.Trainer` is attached (never run) so that the module
builds its optimizer exactly as under ``fit``; its ``self.log`` calls are then no-ops.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from bench.configs import LR, MODES, TEMPERATURE, WARMUP_STEPS, Config, make_batch
from glowapp import GlowModule
from glowapp.generate import sample_grid


def build_module(
    cfg: Config, memory_saving: bool = False, channels_last: bool = True, seed: int = 0
) -> GlowModule:
    """``GlowModule(Glow(...))`` with glowapp's defaults (channels-last unless told otherwise),
    and the benchmarks' learning rate and warm-up."""
    torch.manual_seed(seed)
    return GlowModule(
        cfg.flow(),
        lr=LR,
        warmup_steps=WARMUP_STEPS,
        memory_saving=memory_saving,
        channels_last=channels_last,
    )


def compile_flow(module: GlowModule) -> None:
    """``torch.compile`` the flow's likelihood (``log_prob_and_logits``, which training and
    evaluation call) and its ``decode`` (sampling); preprocessing and dequantisation stay eager."""
    flow = module.flow
    flow.log_prob_and_logits = torch.compile(flow.log_prob_and_logits)  # type: ignore[method-assign]
    flow.decode = torch.compile(flow.decode)  # type: ignore[method-assign]


class Workload:
    """The train / eval / sample steps of one module on one fixed batch (see the module docstring).

    Args:
        cfg: the configuration (its ``batch`` is the sample count of a sampling step).
        module: the module to drive; a barebones trainer is attached to it.
        batch: ``(images, labels)`` as :func:`bench.configs.make_batch` makes them.
    """

    def __init__(self, cfg: Config, module: GlowModule, batch: tuple[Tensor, Tensor]) -> None:
        self.cfg, self.module, self.batch = cfg, module, batch
        module.trainer = pl.Trainer(
            barebones=True, accelerator="cpu", devices=1, logger=False, max_epochs=1
        )
        config: dict[str, Any] = module.configure_optimizers()
        self.optimizer: torch.optim.Optimizer = config["optimizer"]
        self.scheduler = config["lr_scheduler"]["scheduler"]
        self.index = 0

    def init_actnorm(self) -> None:
        """ActNorm's data-dependent initialisation (the first training forward does it)."""
        self.module.train()
        with torch.no_grad():
            self.module.bits_per_dim(self.batch[0])

    def train_step(self) -> float:
        """One optimizer step as ``Trainer.fit`` takes it; the loss (bits/dim) of the batch."""
        module, optimizer, i = self.module, self.optimizer, self.index
        self.index += 1
        module.train()
        losses: list[Tensor] = []

        def closure() -> Tensor:
            loss = module.training_step(self.batch, i)
            module.optimizer_zero_grad(0, i, optimizer)
            module.backward(loss)
            losses.append(loss.detach())
            return loss

        module.optimizer_step(0, i, optimizer, closure)
        self.scheduler.step()
        return float(losses[-1])

    def eval_step(self) -> None:
        """``test_step`` of the batch, as ``Trainer.test`` runs it."""
        self.module.eval()
        with torch.inference_mode():
            self.module.test_step(self.batch, self.index)
        self.index += 1

    def sample_step(self) -> Tensor:
        """``glowapp sample``'s grid: ``batch`` samples at temperature 0.7 ``[1, B, C, H, W]``."""
        self.index += 1
        return sample_grid(self.module, [TEMPERATURE], self.cfg.batch, seed=self.index)

    def step(self, mode: str) -> Any:
        """The step of ``mode`` (one of :data:`MODES`)."""
        steps = {"train": self.train_step, "eval": self.eval_step, "sample": self.sample_step}
        if mode not in steps:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        return steps[mode]()


def workload(
    cfg: Config, memory_saving: bool = False, channels_last: bool = True, compile: bool = False
) -> Workload:
    """A :class:`Workload` of a freshly built module of ``cfg``, ActNorm initialised."""
    module = build_module(cfg, memory_saving=memory_saving, channels_last=channels_last)
    if compile:
        compile_flow(module)
    work = Workload(cfg, module, make_batch(cfg))
    work.init_actnorm()
    return work
