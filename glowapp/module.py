"""The LightningModule: a flow plus preprocessing, trained by maximum likelihood."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from glowapp.checkpointing import AtomicCheckpointIO, check_writable
from glowapp.diagnostics import first_nonfinite_layer
from glowapp.flows.conv1x1 import InvertibleChannelMatrix
from glowapp.flows.preprocess import Preprocessor
from glowapp.models import NICE, Glow, MultiScaleFlow, RealNVP

ARCHITECTURES = ("glow", "realnvp", "nice")
LR_SCHEDULES = ("constant", "cosine")


def build_flow(
    arch: str,
    image_shape: Sequence[int],
    levels: int,
    steps: int,
    hidden: int,
    coupling: str,
    permutation: str,
    blocks: int,
    batch_norm: bool,
) -> MultiScaleFlow:
    """The flow named ``arch`` for images of ``image_shape = (C, H, W)``."""
    c, h, w = (int(v) for v in image_shape)
    if arch == "glow":
        return Glow(c, levels, steps, hidden, coupling, permutation, image_size=(h, w))
    if arch == "realnvp":
        return RealNVP(c, levels, hidden, blocks, coupling, batch_norm, image_size=(h, w))
    if arch == "nice":
        return NICE(c, (h, w), couplings=steps, hidden=hidden, blocks=blocks)
    raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")


class IncompatibleCheckpointError(ValueError):
    """A checkpoint whose weights do not fit the model being loaded into."""


def describe_state_mismatch(expected: dict[str, Tensor], found: dict[str, Tensor], limit: int = 5) -> str:
    """One line naming the missing, unexpected and differently shaped keys (first ``limit`` of each)."""

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:limit]) + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")

    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(found))
        if tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing in checkpoint: {few(missing)}")
    if unexpected:
        parts.append(f"not in model: {few(unexpected)}")
    if shapes:
        parts.append(f"shape differs: {few(shapes)}")
    return "; ".join(parts)


class GlowModule(pl.LightningModule):
    """Maximum-likelihood training of a Glow, RealNVP or NICE flow on images.

    Batches are ``(images, labels)`` with uint8 images ``[B, C, H, W]``. Each step dequantises
    them uniformly (``n_bits`` levels), maps them through the preprocessing bijection (logit with
    ``logit_alpha``, or a shift when it is ``None``) and the flow, and minimises the mean
    bits/dim — the discrete negative log-likelihood per sub-pixel, every term counted (see
    :func:`glowapp.flows.preprocess.bits_per_dim`). Logged as ``train/bpd``, ``val/bpd``,
    ``test/bpd``.

    Non-finite losses: the step is skipped (no parameter or optimizer-state update, on every
    rank) and counted in ``train/skipped_steps``, with a warning naming the step and the first
    layer that produced a non-finite value; after ``max_skipped_steps`` such steps training stops
    with a ``FloatingPointError``.

    Args:
        arch: ``"glow"``, ``"realnvp"`` or ``"nice"``.
        image_shape: ``(C, H, W)`` of the data (linked from the DataModule by the CLI).
        levels: Glow levels / RealNVP scales (ignored by NICE). ``H, W`` must be multiples of
            ``2**levels`` for Glow (``2**(levels-1)`` for RealNVP).
        steps: flow steps per level (Glow) / number of couplings (NICE).
        hidden: width of the coupling networks.
        coupling: ``"affine"`` or ``"additive"``.
        permutation: Glow's channel mixing: ``"lu"``, ``"conv"``, ``"shuffle"`` or ``"reverse"``.
        blocks: residual blocks per coupling network (RealNVP; NICE if > 0).
        batch_norm: RealNVP's batch-norm layers.
        n_bits: bits per sub-pixel the data is quantised to (8 normally, 5 for Glow's CelebA-HQ).
        logit_alpha: logit preprocessing's α (RealNVP: 0.05); ``None`` for Glow's ``x − ½``.
        lr: peak learning rate of Adam.
        warmup_steps: linear warm-up from 0 to ``lr`` over this many optimizer steps.
        lr_schedule: after warm-up, ``"constant"`` or ``"cosine"`` decay to 0 at the last step.
        weight_decay: L2 penalty (RealNVP used 5e-5).
        max_skipped_steps: how many non-finite steps to skip before failing.
        noise_seed: seeds the dequantisation noise, drawn from a generator keyed by (seed, stage,
            step or batch index, rank): a resumed run sees exactly the noise an uninterrupted
            run would, and val/test bits/dim are reproducible.
        memory_saving: recompute each level's activations from its output during the backward
            pass instead of storing them (slower, activation memory independent of depth).
    """

    def __init__(
        self,
        arch: str = "glow",
        image_shape: Sequence[int] = (1, 28, 28),
        levels: int = 2,
        steps: int = 8,
        hidden: int = 128,
        coupling: str = "affine",
        permutation: str = "lu",
        blocks: int = 2,
        batch_norm: bool = False,
        n_bits: int = 8,
        logit_alpha: float | None = None,
        lr: float = 1e-3,
        warmup_steps: int = 200,
        lr_schedule: str = "constant",
        weight_decay: float = 0.0,
        max_skipped_steps: int = 20,
        noise_seed: int = 0,
        memory_saving: bool = False,
    ) -> None:
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
        self.save_hyperparameters()
        self.image_shape = tuple(int(v) for v in image_shape)
        self.preprocess = Preprocessor(n_bits, logit_alpha)
        self.flow = build_flow(arch, image_shape, levels, steps, hidden, coupling, permutation, blocks, batch_norm)
        if memory_saving and batch_norm:
            raise ValueError("memory_saving cannot be combined with batch_norm (batch statistics are not invertible)")
        self.flow.memory_saving = memory_saving
        self.num_dims = math.prod(self.image_shape)
        self.train_bpd, self.val_bpd, self.test_bpd = MeanMetric(), MeanMetric(), MeanMetric()
        self.register_buffer("skipped_steps", torch.tensor(0, dtype=torch.long))
        self._skip_update = False

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse, with the differing hyperparameters and keys named, a checkpoint of another model."""
        state = checkpoint.get("state_dict")
        if not isinstance(state, dict):
            raise IncompatibleCheckpointError("not a glowapp checkpoint: it has no 'state_dict'")
        mismatch = describe_state_mismatch(self.state_dict(), state)
        if mismatch:
            theirs = checkpoint.get("hyper_parameters", {})
            differing = [
                f"{k}={theirs[k]!r} (model: {v!r})"
                for k, v in self.hparams.items()
                if k in theirs and theirs[k] != v and not (isinstance(v, (tuple, list)) and list(v) == list(theirs[k]))
            ]
            hint = f" Checkpoint hyperparameters differ: {', '.join(differing)}." if differing else ""
            raise IncompatibleCheckpointError(f"checkpoint does not match this model: {mismatch}.{hint}")

    def clear_caches(self) -> None:
        """Drop the 1×1 convs' cached matrices. Weight averaging swaps weights through ``.data``,
        which version counters do not see, so this runs whenever weights may have been swapped."""
        for m in self.modules():
            if isinstance(m, InvertibleChannelMatrix):
                m.clear_cache()

    def on_validation_epoch_start(self) -> None:
        self.clear_caches()

    def on_validation_epoch_end(self) -> None:
        self.clear_caches()

    def on_test_epoch_start(self) -> None:
        self.clear_caches()

    def on_train_end(self) -> None:
        self.clear_caches()

    # ---- likelihood -------------------------------------------------------------------------
    def log_prob_y(self, y: Tensor) -> Tensor:
        """``log p_Y(y)`` ``[B]`` (nats) of dequantised images ``y ∈ [0, 1)`` — differentiable in ``y``."""
        x, logdet_pre = self.preprocess(y)
        return self.flow.log_prob(x) + logdet_pre

    def bits_per_dim(
        self, images: Tensor, noise: bool = True, generator: torch.Generator | None = None
    ) -> Tensor:
        """Bits/dim ``[B]`` of uint8 ``[0, 255]`` or float ``[0, 1]`` images ``[B, C, H, W]``.

        With ``noise=True`` a uniform dequantisation (the papers' estimate; ``generator`` on the
        module's device makes it reproducible); with ``noise=False`` the bin centres.
        """
        images = self._check_images(images)
        x, logdet_pre = self.preprocess.encode_images(images, noise=noise, generator=generator)
        return self.preprocess.bits_per_dim(self.flow.log_prob(x), logdet_pre, self.num_dims)

    def _check_images(self, images: Tensor) -> Tensor:
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images of shape [B, {', '.join(map(str, self.image_shape))}] for this model, "
                f"got {tuple(images.shape)}"
            )
        return images.to(self.device)

    # ---- generation helpers (used by callbacks, CLI tools and the demo) ----------------------
    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images ``[n, C, H, W]`` in ``[0, 1]``, every prior's std scaled by ``temperature``."""
        return self.decode(self.flow.sample_latents(n, temperature, generator))

    @torch.no_grad()
    def encode(self, images: Tensor, noise: bool = False) -> list[Tensor]:
        """Images (uint8 or ``[0, 1]``) → latents ``[ε_1, …, ε_L]`` (bin centres unless ``noise``)."""
        x, _ = self.preprocess.encode_images(self._check_images(images), noise=noise)
        return self.flow.encode(x)[0]

    @torch.no_grad()
    def decode(self, latents: Sequence[Tensor]) -> Tensor:
        """Latents → images in ``[0, 1]`` quantised to ``n_bits``."""
        return self.preprocess.to_images(self.flow.decode(latents))

    # ---- training -----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        strategy = self.trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = AtomicCheckpointIO()
        if stage == "fit" and self.trainer.is_global_zero:
            # Params + two Adam moments + slack: refuse to start a run whose checkpoints can't be written.
            size = 4 * sum(p.numel() for p in self.parameters()) * 3 + 2**20
            for callback in self.trainer.checkpoint_callbacks:
                if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                    check_writable(callback.dirpath, 2 * size)

    def _noise_generator(self, stage: int, index: int) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        key = (int(self.hparams.noise_seed), stage, index, self.global_rank)
        generator.manual_seed(hash(key) & 0x7FFF_FFFF_FFFF)
        return generator

    def model_step(self, batch: tuple[Tensor, Tensor], stage: int, index: int) -> Tensor:
        """Bits/dim ``[B]`` of a batch, dequantised with the noise keyed by ``(stage, index)``."""
        return self.bits_per_dim(batch[0], noise=True, generator=self._noise_generator(stage, index))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        bpd = self.model_step(batch, 0, self.global_step)
        loss = bpd.mean()
        nonfinite = self.trainer.strategy.reduce_boolean_decision(
            not bool(torch.isfinite(loss)), all=False
        )
        if nonfinite:
            return self._skip_step(batch, loss)
        self.train_bpd(bpd.detach())
        self.log("train/bpd", self.train_bpd, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _skip_step(self, batch: tuple[Tensor, Tensor], loss: Tensor) -> Tensor:
        """Count a non-finite step and return a zero loss that still reaches every parameter."""
        self.skipped_steps += 1
        self._skip_update = True
        x, _ = self.preprocess.encode_images(batch[0], noise=True)
        where = first_nonfinite_layer(self.flow, x) or "the loss"
        message = (
            f"non-finite loss ({loss.item()}) at global step {self.global_step}; first non-finite "
            f"value from {where}. Step skipped ({int(self.skipped_steps)}/{self.hparams.max_skipped_steps})."
        )
        if int(self.skipped_steps) > self.hparams.max_skipped_steps:
            raise FloatingPointError(
                message + " Too many non-finite steps: lower the learning rate, raise warmup_steps, "
                "enable gradient clipping (--trainer.gradient_clip_val) or use additive coupling."
            )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        self.log("train/skipped_steps", self.skipped_steps.float(), on_step=True, on_epoch=False)
        # Zero gradients for every parameter keep DDP's gradient sync in lock-step across ranks.
        return sum((p.sum() * 0.0 for p in self.parameters() if p.requires_grad), torch.zeros((), device=self.device))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # A skipped step, or a finite loss with non-finite gradients: drop the gradients so the
        # optimizer leaves parameters *and* its moment estimates untouched.
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not self._skip_update and grads:
            norms = torch._foreach_norm(grads)
            finite = bool(torch.isfinite(torch.stack(norms)).all())
            self._skip_update = self.trainer.strategy.reduce_boolean_decision(not finite, all=False)
            if self._skip_update:
                self.skipped_steps += 1
                warnings.warn(f"non-finite gradients at global step {self.global_step}; step skipped", RuntimeWarning, stacklevel=2)
        if self._skip_update:
            optimizer.zero_grad(set_to_none=True)
            self._skip_update = False

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.val_bpd(self.model_step(batch, 1, batch_idx))
        self.log("val/bpd", self.val_bpd, on_step=False, on_epoch=True, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.test_bpd(self.model_step(batch, 2, batch_idx))
        self.log("test/bpd", self.test_bpd, on_step=False, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        warmup = max(int(self.hparams.warmup_steps), 0)
        total = max(int(self.trainer.estimated_stepping_batches), 1) if self.hparams.lr_schedule == "cosine" else 0

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if total:
                progress = min((step - warmup) / max(total - warmup, 1), 1.0)
                return 0.5 * (1.0 + math.cos(math.pi * progress))
            return 1.0

        scheduler = LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
