"""The LightningModule: a flow plus preprocessing, trained by maximum likelihood."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.precision import MixedPrecision
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric

from glowapp.checkpointing import AtomicCheckpointIO, check_writable
from glowapp.diagnostics import first_nonfinite_layer
from glowapp.flows.conv1x1 import InvertibleChannelMatrix
from glowapp.flows.dequantization import importance_weighted, make_dequantization
from glowapp.flows.preprocess import Preprocessor
from glowapp.models import NICE, Glow, MultiScaleFlow, RealNVP
from glowapp.optim import make_adam

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
    spline_bins: int = 8,
    spline_bound: float = 3.0,
    num_classes: int = 0,
) -> MultiScaleFlow:
    """The flow named ``arch`` for images of ``image_shape = (C, H, W)``."""
    c, h, w = (int(v) for v in image_shape)
    options = dict(spline_bins=spline_bins, spline_bound=spline_bound, num_classes=num_classes)
    if arch == "glow":
        return Glow(c, levels, steps, hidden, coupling, permutation, (h, w), **options)
    if arch == "realnvp":
        return RealNVP(c, levels, hidden, blocks, coupling, batch_norm, (h, w), **options)
    if arch == "nice":
        return NICE(c, (h, w), steps, hidden, blocks, num_classes=num_classes)
    raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")


class IncompatibleCheckpointError(ValueError):
    """A checkpoint whose weights do not fit the model being loaded into."""


def describe_state_mismatch(
    expected: dict[str, Tensor], found: dict[str, Tensor], limit: int = 5
) -> str:
    """One line naming the missing, unexpected and differently shaped keys (first ``limit`` of each)."""

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:limit]) + (
            f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
        )

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
    ``test/bpd``: with variational dequantisation (or a single uniform draw) this is the
    variational *bound* ``−E_q[log p(x + u) − log q(u | x)]`` on the discrete bits/dim; with
    ``iw_samples = S > 0`` the test also logs ``test/bpd_iw``, the tighter importance-weighted
    estimate over ``S`` draws (see :mod:`glowapp.flows.dequantization`), for either
    dequantisation, so the two can be compared on equal terms.

    Class-conditional training (``num_classes > 0``, Kingma & Dhariwal 2018): the labels of each
    batch condition the top prior, bits/dim is that of ``p(x | y)``, and a linear classifier on
    the top latent adds ``class_weight × (−log₂ p(y | x))`` (bits, as in the reference Glow code)
    to the loss; logged as ``train/class_loss`` and ``val/accuracy`` / ``test/accuracy``.

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
        coupling: ``"affine"``, ``"additive"`` or ``"spline"`` (monotonic rational-quadratic
            splines, Durkan et al. 2019).
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
        spline_bins: bins ``K`` of the spline coupling (default 8).
        spline_bound: the spline acts on ``[−B, B]``, the identity outside; ``B`` (default 3:
            ActNorm-normalised inputs fall inside 99.7% of the time).
        num_classes: number of classes of a class-conditional model (the data's labels, e.g. 10
            for Fashion-MNIST); 0 (default) = unconditional.
        class_weight: weight of the classification loss in bits (the Glow paper: 0.01).
        dequantization: ``"uniform"`` (``u ~ U[0, 1)``) or ``"variational"`` (a learned flow
            ``q(u | x)``, Ho et al. 2019; see
            :class:`glowapp.flows.dequantization.VariationalDequantization`).
        dequantization_steps: couplings of the variational dequantisation flow.
        dequantization_hidden: width of its networks.
        iw_samples: ``S > 0``: the test also logs ``test/bpd_iw``, the importance-weighted
            bits/dim estimate over ``S`` dequantisation draws per image (``S`` forward passes);
            0 (default): only the bound ``test/bpd``. Not stored in checkpoints: give it to
            ``glowapp test`` (``--model.iw_samples 16``).
        channels_last: run the flow on channels-last (NHWC) weights and activations (default:
            faster convolutions on CPU, and on GPUs under mixed precision); same bits/dim.
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
        spline_bins: int = 8,
        spline_bound: float = 3.0,
        num_classes: int = 0,
        class_weight: float = 0.01,
        dequantization: str = "uniform",
        dequantization_steps: int = 4,
        dequantization_hidden: int = 32,
        iw_samples: int = 0,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
        if iw_samples < 0:
            raise ValueError(
                f"iw_samples must be >= 0 (0: no importance-weighted bpd), got {iw_samples}"
            )
        if class_weight < 0:
            raise ValueError(f"class_weight must be >= 0, got {class_weight}")
        # iw_samples only affects testing: kept out of the checkpoint's hyperparameters, so
        # `glowapp test --ckpt_path P --model.iw_samples S` is not overridden by the value at fit.
        self.save_hyperparameters(ignore=["iw_samples"])
        self.iw_samples = iw_samples
        self.image_shape = tuple(int(v) for v in image_shape)
        self.preprocess = Preprocessor(n_bits, logit_alpha)
        self.dequantizer = make_dequantization(
            dequantization, self.image_shape[0], n_bits, dequantization_hidden, dequantization_steps
        )
        self.flow = build_flow(
            arch, image_shape, levels, steps, hidden, coupling, permutation, blocks, batch_norm,
            spline_bins, spline_bound, num_classes,
        )  # fmt: skip
        if memory_saving and batch_norm:
            raise ValueError(
                "memory_saving cannot be combined with batch_norm (batch statistics are not invertible)"
            )
        self.flow.memory_saving = memory_saving
        self.flow.use_channels_last(channels_last)
        self.num_dims = math.prod(self.image_shape)
        self.train_bpd, self.val_bpd, self.test_bpd = MeanMetric(), MeanMetric(), MeanMetric()
        self.test_bpd_iw, self.val_accuracy, self.test_accuracy = (MeanMetric() for _ in range(3))
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
                if k in theirs
                and theirs[k] != v
                and not (isinstance(v, (tuple, list)) and list(v) == list(theirs[k]))
            ]
            hint = (
                f" Checkpoint hyperparameters differ: {', '.join(differing)}." if differing else ""
            )
            raise IncompatibleCheckpointError(
                f"checkpoint does not match this model: {mismatch}.{hint}"
            )

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
    def log_prob_y(self, y: Tensor, labels: Tensor | None = None) -> Tensor:
        """``log p_Y(y)`` ``[B]`` (nats) of dequantised images ``y ∈ [0, 1)`` — differentiable in ``y``.

        Class-conditional models: ``log p_Y(y | labels)``, or the marginal over classes without labels.
        """
        x, logdet_pre = self.preprocess(y)
        return self._flow_log_prob(x, labels)[0] + logdet_pre

    def _flow_log_prob(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The flow's ``log p_X(x)`` ``[B]`` and, if class-conditional, its class logits ``[B, K]``."""
        if not self.flow.num_classes:
            return self.flow.log_prob(x), None
        return self.flow.log_prob_and_logits(x, labels)

    def _bits_and_logits(
        self, images: Tensor, noise: bool, generator: torch.Generator | None, labels: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """Bits/dim ``[B]`` (every term, the dequantisation's ``log q`` included) and class logits."""
        images = self._check_images(images)
        if noise:
            y, log_q = self.dequantizer(images, generator)
        else:
            y, log_q = self.preprocess.dequantize(images, noise=False), 0.0
        x, logdet_pre = self.preprocess(y)
        log_px, logits = self._flow_log_prob(x, labels)
        return self.preprocess.bits_per_dim(log_px, logdet_pre, self.num_dims, log_q), logits

    def bits_per_dim(
        self,
        images: Tensor,
        noise: bool = True,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Bits/dim ``[B]`` of uint8 ``[0, 255]`` or float ``[0, 1]`` images ``[B, C, H, W]``.

        With ``noise=True`` one draw of the model's dequantisation (uniform: the papers'
        estimate; variational: a draw of the bound, ``log q`` included; ``generator`` on the
        module's device makes it reproducible); with ``noise=False`` the bin centres.
        ``labels`` ``[B]`` condition a class-conditional model (the marginal over classes
        without them).
        """
        return self._bits_and_logits(images, noise, generator, labels)[0]

    def log_weights(
        self,
        images: Tensor,
        samples: int,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """``log p_Y(y_s) − log q(u_s | k)`` in nats, ``[samples, B]``, for independent draws ``u_s ~ q``."""
        images = self._check_images(images)
        draws = []
        for _ in range(samples):
            y, log_q = self.dequantizer(images, generator)
            draws.append(self.log_prob_y(y, labels) - log_q)
        return torch.stack(draws)

    def bits_per_dim_iw(
        self,
        images: Tensor,
        samples: int,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Importance-weighted bits/dim ``[B]`` over ``samples`` dequantisation draws.

        ``log P(k) ≈ log (1/S) Σ_s exp(log p_Y(y_s) − log q(u_s | k)) − D log K``: never above
        the mean of the same draws' bounds, and tighter as ``S`` grows (see
        :mod:`glowapp.flows.dequantization`). Works for uniform dequantisation too (``log q = 0``).
        """
        if samples < 1:
            raise ValueError(f"the importance-weighted estimate needs samples >= 1, got {samples}")
        log_py = importance_weighted(self.log_weights(images, samples, generator, labels))
        return self.preprocess.bits_per_dim(log_py, torch.zeros_like(log_py), self.num_dims)

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
    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """``n`` images ``[n, C, H, W]`` in ``[0, 1]``, every prior's std scaled by ``temperature``.

        Class-conditional models: of classes ``labels`` ``[n]``, or of uniformly drawn classes.
        """
        return self.preprocess.to_images(self.flow.sample(n, temperature, generator, labels))

    @torch.no_grad()
    def encode(
        self, images: Tensor, noise: bool = False, labels: Tensor | None = None
    ) -> list[Tensor]:
        """Images (uint8 or ``[0, 1]``) → latents ``[ε_1, …, ε_L]`` (bin centres unless ``noise``).

        ``labels`` ``[B]``: required by a class-conditional model.
        """
        x, _ = self.preprocess.encode_images(self._check_images(images), noise=noise)
        return self.flow.encode(x, labels)[0]

    @torch.no_grad()
    def decode(self, latents: Sequence[Tensor], labels: Tensor | None = None) -> Tensor:
        """Latents → images in ``[0, 1]`` quantised to ``n_bits`` (``labels`` if class-conditional)."""
        return self.preprocess.to_images(self.flow.decode(latents, labels))

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

    def model_step(
        self, batch: tuple[Tensor, Tensor], stage: int, index: int
    ) -> tuple[Tensor, Tensor | None]:
        """Bits/dim ``[B]`` of a batch, dequantised with the noise keyed by ``(stage, index)``,
        and the class logits ``[B, K]`` of a class-conditional model (conditioned on the batch's
        labels; None for an unconditional one)."""
        labels = batch[1] if self.flow.num_classes else None
        return self._bits_and_logits(batch[0], True, self._noise_generator(stage, index), labels)

    def _class_bits(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The classification loss ``−log₂ p(y | x)`` ``[B]`` (bits)."""
        return F.cross_entropy(
            logits.float(), labels.to(logits.device), reduction="none"
        ) / math.log(2.0)

    def _accuracy(self, logits: Tensor, labels: Tensor) -> Tensor:
        return (logits.argmax(dim=1) == labels.to(logits.device)).float()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        bpd, logits = self.model_step(batch, 0, self.global_step)
        loss = bpd.mean()
        if logits is not None:
            class_loss = self._class_bits(logits, batch[1]).mean()
            loss = loss + self.hparams.class_weight * class_loss
        nonfinite = self.trainer.strategy.reduce_boolean_decision(
            not bool(torch.isfinite(loss)), all=False
        )
        if nonfinite:
            return self._skip_step(batch, loss)
        self.train_bpd(bpd.detach())
        self.log("train/bpd", self.train_bpd, on_step=True, on_epoch=False, prog_bar=True)
        if logits is not None:
            self.log("train/class_loss", class_loss.detach(), on_step=True, on_epoch=False)
        return loss

    def _skip_step(self, batch: tuple[Tensor, Tensor], loss: Tensor) -> Tensor:
        """Count a non-finite step and return a zero loss that still reaches every parameter."""
        self.skipped_steps += 1
        self._skip_update = True
        x, _ = self.preprocess.encode_images(batch[0], noise=True)
        labels = batch[1] if self.flow.num_classes else None
        where = first_nonfinite_layer(self.flow, x, labels) or "the loss"
        message = (
            f"non-finite loss ({loss.item()}) at global step {self.global_step}; first non-finite "
            f"value from {where}. Step skipped ({int(self.skipped_steps)}/{self.hparams.max_skipped_steps})."
        )
        if int(self.skipped_steps) > self.hparams.max_skipped_steps:
            raise FloatingPointError(
                message
                + " Too many non-finite steps: lower the learning rate, raise warmup_steps, "
                "enable gradient clipping (--trainer.gradient_clip_val) or use additive coupling."
            )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        self.log("train/skipped_steps", self.skipped_steps.float(), on_step=True, on_epoch=False)
        # Zero gradients for every parameter keep DDP's gradient sync in lock-step across ranks.
        return sum(
            (p.sum() * 0.0 for p in self.parameters() if p.requires_grad),
            torch.zeros((), device=self.device),
        )

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
                warnings.warn(
                    f"non-finite gradients at global step {self.global_step}; step skipped",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if self._skip_update:
            optimizer.zero_grad(set_to_none=True)
            self._skip_update = False

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        bpd, logits = self.model_step(batch, 1, batch_idx)
        self.val_bpd(bpd)
        self.log("val/bpd", self.val_bpd, on_step=False, on_epoch=True, prog_bar=True)
        if logits is not None:
            self.val_accuracy(self._accuracy(logits, batch[1]))
            self.log("val/accuracy", self.val_accuracy, on_step=False, on_epoch=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``test/bpd``: the bound (one dequantisation draw per image); ``test/bpd_iw``: the
        importance-weighted estimate over ``iw_samples`` further draws (if > 0)."""
        bpd, logits = self.model_step(batch, 2, batch_idx)
        self.test_bpd(bpd)
        self.log("test/bpd", self.test_bpd, on_step=False, on_epoch=True, prog_bar=True)
        if logits is not None:
            self.test_accuracy(self._accuracy(logits, batch[1]))
            self.log("test/accuracy", self.test_accuracy, on_step=False, on_epoch=True)
        if self.iw_samples:
            labels = batch[1] if self.flow.num_classes else None
            generator = self._noise_generator(3, batch_idx)
            self.test_bpd_iw(self.bits_per_dim_iw(batch[0], self.iw_samples, generator, labels))
            self.log("test/bpd_iw", self.test_bpd_iw, on_step=False, on_epoch=True, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        """Print which test number is which: the bound, and the importance-weighted estimate."""
        kind = (
            "the variational bound −E_q[log p(x + u) − log q(u | x)]"
            if self.hparams.get("dequantization", "uniform") == "variational"
            else "the uniform-dequantisation bound (the papers' estimate)"
        )
        lines = [
            f"test/bpd    = {float(self.test_bpd.compute()):.4f} bits/dim: {kind}, "
            "one dequantisation draw per image"
        ]
        if self.iw_samples:
            lines.append(
                f"test/bpd_iw = {float(self.test_bpd_iw.compute()):.4f} bits/dim: the "
                f"importance-weighted estimate over {self.iw_samples} draws per image (tighter; "
                "the one to compare with published bits/dim)"
            )
        self.print("\n".join(lines))

    def configure_optimizers(self) -> dict:
        # A fused optimizer unscales gradients itself, so Lightning's mixed-precision plugins
        # refuse to clip its gradients: mixed precision takes the multi-tensor update instead.
        mixed = isinstance(self.trainer.precision_plugin, MixedPrecision)
        optimizer = make_adam(
            self.parameters(), self.hparams.lr, self.hparams.weight_decay, fused=not mixed
        )
        warmup = max(int(self.hparams.warmup_steps), 0)
        total = (
            max(int(self.trainer.estimated_stepping_batches), 1)
            if self.hparams.lr_schedule == "cosine"
            else 0
        )

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if total:
                progress = min((step - warmup) / max(total - warmup, 1), 1.0)
                return 0.5 * (1.0 + math.cos(math.pi * progress))
            return 1.0

        scheduler = LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
