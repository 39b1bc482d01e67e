"""The LightningModule: maximum-likelihood training of an injected flow on images."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.plugins.precision import MixedPrecision
from torch import Tensor
from torchmetrics import MeanMetric

from glowapp.checkpointing import (
    CheckpointError,
    describe_state_mismatch,
    flow_differences,
    upgrade_hparams,
)
from glowapp.flows.conv1x1 import InvertibleChannelMatrix
from glowapp.flows.dequantization import importance_weighted
from glowapp.models import MultiScaleFlow, build_flow, flow_spec
from glowapp.optim import LR_SCHEDULES, make_adam, make_schedule
from glowapp.options import Dequantization, Preprocessing, as_dict, as_option

# Stage keys of the dequantisation noise (see GlowModule.noise_generator).
TRAIN, VAL, TEST, TEST_IW = range(4)


class GlowModule(pl.LightningModule):
    """Maximum-likelihood training of a flow (Glow, RealNVP, NICE, …) on images.

    Batches are ``(images, labels)`` with uint8 images ``[B, C, H, W]``. Each step dequantises
    them (``dequantization``), maps them through the preprocessing bijection
    (``preprocessing``) and the flow, and minimises the mean bits/dim — the discrete negative
    log-likelihood per sub-pixel with every term counted (see
    :func:`glowapp.flows.preprocess.bits_per_dim`):

    ``bpd = −(log p_X(x) + log|det ∂x/∂y| − log q(u | k) − D log 2^n_bits) / (D log 2)``.

    Logged as ``train/bpd``, ``val/bpd``, ``test/bpd`` (one dequantisation draw per image: the
    variational bound); with ``iw_samples = S > 0`` the test also logs ``test/bpd_iw``, the
    importance-weighted estimate over ``S`` draws (see :mod:`glowapp.flows.dequantization`).

    Class-conditional flows (``num_classes > 0``, Kingma & Dhariwal 2018): the batch's labels
    condition the top prior, bits/dim is that of ``p(x | y)``, and the flow's linear classifier
    adds ``class_weight × (−log₂ p(y | x))`` to the loss (``train/class_loss``,
    ``val/accuracy``, ``test/accuracy``).

    Args:
        flow: the flow, built for the data's image size (the CLI links ``in_channels`` and
            ``image_size`` from the DataModule). Checkpoints store it as plain data
            (:func:`glowapp.models.flow_spec`) so :meth:`load_from_checkpoint` rebuilds it.
        preprocessing: ``n_bits`` and the logit's ``α`` (see :class:`glowapp.options.Preprocessing`).
        dequantization: uniform or variational (see :class:`glowapp.options.Dequantization`).
        lr: peak learning rate of Adam.
        warmup_steps: linear warm-up from 0 to ``lr`` over this many optimizer steps.
        lr_schedule: after warm-up, ``"constant"`` or ``"cosine"`` decay to 0 at the last step.
        weight_decay: L2 penalty (RealNVP used 5e-5).
        class_weight: weight of a class-conditional flow's classification loss (Glow: 0.01).
        noise_seed: seeds the dequantisation noise, drawn from a generator keyed by (seed, stage,
            step or batch index, rank): a resumed run sees exactly the noise an uninterrupted
            run would, and val/test bits/dim are reproducible.
        iw_samples: ``S > 0``: the test also logs ``test/bpd_iw`` over ``S`` draws per image.
            Not stored in checkpoints: give it to ``glowapp test`` (``--model.iw_samples 16``).
        memory_saving: recompute each level's activations from its output during backprop
            instead of storing them (slower; activation memory independent of depth).
        channels_last: run the flow on channels-last (NHWC) weights and activations (faster
            convolutions on CPU, and on GPUs under mixed precision); same bits/dim.
    """

    def __init__(
        self,
        flow: MultiScaleFlow,
        preprocessing: Preprocessing = Preprocessing(),
        dequantization: Dequantization = Dequantization(),
        lr: float = 1e-3,
        warmup_steps: int = 200,
        lr_schedule: str = "constant",
        weight_decay: float = 0.0,
        class_weight: float = 0.01,
        noise_seed: int = 0,
        iw_samples: int = 0,
        memory_saving: bool = False,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if iw_samples < 0:
            raise ValueError(
                f"iw_samples must be >= 0 (0: no importance-weighted bpd), got {iw_samples}"
            )
        if class_weight < 0:
            raise ValueError(f"class_weight must be >= 0, got {class_weight}")
        if isinstance(flow, Mapping):  # a checkpoint's plain-data spec
            flow = build_flow(flow)
        if not isinstance(flow, MultiScaleFlow):
            raise TypeError(f"flow must be a MultiScaleFlow (Glow, RealNVP, NICE), got {flow!r}")
        if not flow.has_image_size:
            raise ValueError(
                "the flow must be built for a known image size: pass image_size=(H, W) "
                "(the CLI links it from the DataModule)"
            )
        preprocessing = as_option(preprocessing, Preprocessing)
        dequantization = as_option(dequantization, Dequantization)
        # Plain data only (checkpoints are read with weights_only=True). iw_samples only affects
        # testing, so `glowapp test --model.iw_samples S` is not overridden by the value at fit.
        self.save_hyperparameters(
            {
                "flow": flow_spec(flow),
                "preprocessing": as_dict(preprocessing),
                "dequantization": as_dict(dequantization),
                "lr": lr,
                "warmup_steps": warmup_steps,
                "lr_schedule": lr_schedule,
                "weight_decay": weight_decay,
                "class_weight": class_weight,
                "noise_seed": noise_seed,
                "memory_saving": memory_saving,
                "channels_last": channels_last,
            }
        )
        self.iw_samples = iw_samples
        self.image_shape = (flow.in_channels, *flow.image_size)
        self.num_dims = math.prod(self.image_shape)
        self.preprocess = preprocessing.build()
        self.dequantizer = dequantization.build(flow.in_channels, preprocessing.n_bits)
        self.flow = flow.use_memory_saving(memory_saving).use_channels_last(channels_last)
        self.train_bpd, self.val_bpd, self.test_bpd = MeanMetric(), MeanMetric(), MeanMetric()
        self.test_bpd_iw, self.val_accuracy, self.test_accuracy = (MeanMetric() for _ in range(3))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse, naming the differing keys, a checkpoint whose weights do not fit this model."""
        state = checkpoint.get("state_dict")
        if not isinstance(state, dict):
            raise CheckpointError("not a glowapp checkpoint: it has no 'state_dict'")
        state.pop("skipped_steps", None)  # a counter of glowapp < 0.2, now the callback's
        mismatch = describe_state_mismatch(self.state_dict(), state)
        if mismatch:
            theirs = upgrade_hparams(checkpoint.get("hyper_parameters") or {}).get("flow")
            differing = flow_differences(self.hparams["flow"], theirs)
            hint = f"; the checkpoint's flow differs: {', '.join(differing)}" if differing else ""
            raise CheckpointError(
                f"checkpoint does not match this model ({self.hparams['flow']['class_path']}): "
                f"{mismatch}{hint}"
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
        return self.flow.log_prob(x, labels) + logdet_pre

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
        log_px, logits = self.flow.log_prob_and_logits(x, labels)
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
        images = self._check_images(images)
        draws = []
        for _ in range(samples):
            y, log_q = self.dequantizer(images, generator)
            draws.append(self.log_prob_y(y, labels) - log_q)
        log_py = importance_weighted(torch.stack(draws))
        return self.preprocess.bits_per_dim(log_py, torch.zeros_like(log_py), self.num_dims)

    def _check_images(self, images: Tensor) -> Tensor:
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images of shape [B, {', '.join(map(str, self.image_shape))}] for this model, "
                f"got {tuple(images.shape)}"
            )
        images = images.to(self.device)
        if images.dtype == torch.uint8 and self.dtype == torch.float64:
            # The pixel pipeline reads uint8 as float32 and keeps a float input's dtype: a
            # float64 model gets its levels, noise and bits/dim in float64 this way (k/255 is exact).
            images = images.to(torch.float64) / 255
        return images

    # ---- the flow as a generative model (used by glowapp.generate) --------------------------
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
    def noise_generator(self, stage: int, index: int) -> torch.Generator:
        """The dequantisation noise of batch ``index`` of ``stage`` (TRAIN, VAL, TEST, TEST_IW)."""
        generator = torch.Generator(device=self.device)
        key = (int(self.hparams.noise_seed), stage, index, self.global_rank)
        generator.manual_seed(hash(key) & 0x7FFF_FFFF_FFFF)
        return generator

    def labels_of(self, batch: tuple[Tensor, Tensor]) -> Tensor | None:
        """The batch's labels if the flow is class-conditional, else None."""
        return batch[1] if self.flow.num_classes else None

    def model_step(
        self, batch: tuple[Tensor, Tensor], stage: int, index: int
    ) -> tuple[Tensor, Tensor | None]:
        """Bits/dim ``[B]`` of a batch, dequantised with the noise keyed by ``(stage, index)``,
        and the class logits ``[B, K]`` of a class-conditional flow (None otherwise)."""
        generator = self.noise_generator(stage, index)
        return self._bits_and_logits(batch[0], True, generator, self.labels_of(batch))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        bpd, logits = self.model_step(batch, TRAIN, self.global_step)
        loss = bpd.mean()
        if logits is not None:
            class_bits = F.cross_entropy(logits.float(), batch[1].to(logits.device)) / math.log(2)
            loss = loss + self.hparams.class_weight * class_bits
            self.log("train/class_loss", class_bits.detach(), on_step=True, on_epoch=False)
        # A non-finite loss is left to glowapp.callbacks.SkipNonFiniteSteps (it drops the update).
        if torch.isfinite(bpd).all():
            self.train_bpd(bpd.detach())
            self.log("train/bpd", self.train_bpd, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], batch_idx: int, stage: int) -> None:
        name = "val" if stage == VAL else "test"
        bpd, logits = self.model_step(batch, stage, batch_idx)
        metric = self.val_bpd if stage == VAL else self.test_bpd
        metric(bpd)
        self.log(f"{name}/bpd", metric, on_step=False, on_epoch=True, prog_bar=True)
        if logits is not None:
            accuracy = self.val_accuracy if stage == VAL else self.test_accuracy
            accuracy((logits.argmax(dim=1) == batch[1].to(logits.device)).float())
            self.log(f"{name}/accuracy", accuracy, on_step=False, on_epoch=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, VAL)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``test/bpd``: the bound (one dequantisation draw per image); ``test/bpd_iw``: the
        importance-weighted estimate over ``iw_samples`` further draws (if > 0)."""
        self._evaluate(batch, batch_idx, TEST)
        if self.iw_samples:
            generator = self.noise_generator(TEST_IW, batch_idx)
            bpd_iw = self.bits_per_dim_iw(
                batch[0], self.iw_samples, generator, self.labels_of(batch)
            )
            self.test_bpd_iw(bpd_iw)
            self.log("test/bpd_iw", self.test_bpd_iw, on_step=False, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> dict[str, Any]:
        # A fused optimizer unscales gradients itself, so Lightning's mixed-precision plugins
        # refuse to clip its gradients: mixed precision takes the multi-tensor update instead.
        mixed = isinstance(self.trainer.precision_plugin, MixedPrecision)
        hp = self.hparams
        optimizer = make_adam(self.parameters(), hp.lr, hp.weight_decay, fused=not mixed)
        total = int(self.trainer.estimated_stepping_batches) if hp.lr_schedule == "cosine" else 0
        scheduler = make_schedule(optimizer, hp.lr_schedule, hp.warmup_steps, total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
