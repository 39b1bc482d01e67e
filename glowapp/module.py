"""The LightningModule: maximum-likelihood training of an :class:`~glowapp.ImageFlow`."""

from __future__ import annotations

import io
import math
import os
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
    first_line,
    flow_differences,
    read_checkpoint,
    upgrade_hparams,
)
from glowapp.devices import resolve_device
from glowapp.flows.conv1x1 import InvertibleChannelMatrix
from glowapp.image_flow import ImageFlow
from glowapp.models import MultiScaleFlow, build_flow
from glowapp.optim import LR_SCHEDULES, make_adam, make_schedule
from glowapp.options import Dequantization, Preprocessing, Sampling
from glowapp.pretrained import resolve_checkpoint

# Stage keys of the dequantisation noise (see GlowModule.noise_generator).
TRAIN, VAL, TEST, TEST_IW, LABEL_DROPOUT = range(5)
#: The ImageFlow's attribute name; its weights are stored without this prefix (the checkpoint
#: format of glowapp before the ImageFlow existed: ``flow.*``, ``dequantizer.*``).
MODEL = "model"


class GlowModule(pl.LightningModule):
    """Maximum-likelihood training of a flow (Glow, RealNVP, NICE, TarFlow, …) on images.

    The module holds the density model, an :class:`~glowapp.ImageFlow` (``self.model``:
    dequantisation, preprocessing and the injected flow), and trains it. Batches are
    ``(images, labels)`` with uint8 images ``[B, C, H, W]``. Each step dequantises them, maps
    them through the preprocessing and the flow, and minimises the mean bits/dim — the discrete
    negative log-likelihood per sub-pixel with every term counted (see
    :func:`glowapp.flows.preprocess.bits_per_dim`):

    ``bpd = −(log p_X(x) + log|det ∂x/∂y| − log q(u | k) − D log 2^n_bits) / (D log 2)``.

    Logged as ``train/bpd``, ``val/bpd``, ``test/bpd`` (one dequantisation draw per image: the
    variational bound); with ``iw_samples = S > 0`` the test also logs ``test/bpd_iw``, the
    importance-weighted estimate over ``S`` draws (see :mod:`glowapp.flows.dequantization`).
    A model trained with Gaussian noise (``dequantization.kind: gaussian``) logs the same keys,
    but they are noisy-image bits/dim, not the papers' (:attr:`ImageFlow.bits_label`).

    Class-conditional flows (``num_classes > 0``, Kingma & Dhariwal 2018): the batch's labels
    condition the flow, bits/dim is that of ``p(x | y)``, and the flow's linear classifier
    adds ``class_weight × (−log₂ p(y | x))`` to the loss (``train/class_loss``,
    ``val/accuracy``, ``test/accuracy``). With ``label_dropout = p > 0`` (flows with a "no label",
    ``label_embedding_dim > 0``) each training label is replaced by "no label" with probability
    ``p``, so the same model is also unconditional and samples with classifier-free guidance.

    Checkpoints store the hyper-parameters as plain data (the flow as
    :func:`glowapp.models.flow_spec`) and the weights under the keys ``flow.*`` and
    ``dequantizer.*`` (the ImageFlow's own, without the ``model.`` prefix), so
    :func:`glowapp.load` reads them without Lightning.

    Args:
        flow: the flow, built for the data's image size (the CLI links ``in_channels`` and
            ``image_size`` from the DataModule).
        preprocessing: ``n_bits`` and the logit's ``α`` (see :class:`glowapp.options.Preprocessing`).
        dequantization: uniform, variational or Gaussian noise (see
            :class:`glowapp.options.Dequantization`).
        sampling: the trained model's default sampling settings, stored in the checkpoint
            (see :class:`glowapp.options.Sampling`).
        unconditional: the trained model is used as the unconditional model that label dropout
            also trains (see :class:`~glowapp.ImageFlow`); set on shipped files, not in training.
        lr: peak learning rate of Adam.
        warmup_steps: linear warm-up from 0 to ``lr`` over this many optimizer steps.
        lr_schedule: after warm-up, ``"constant"`` or ``"cosine"`` decay to 0 at the last step.
        weight_decay: L2 penalty (RealNVP used 5e-5).
        class_weight: weight of a class-conditional flow's classification loss (Glow: 0.01).
        label_dropout: share of training labels replaced by "no label" (classifier-free guidance).
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
        sampling: Sampling = Sampling(),
        unconditional: bool = False,
        lr: float = 1e-3,
        warmup_steps: int = 200,
        lr_schedule: str = "constant",
        weight_decay: float = 0.0,
        class_weight: float = 0.01,
        label_dropout: float = 0.0,
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
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
        if isinstance(flow, Mapping):  # a checkpoint's plain-data spec
            flow = build_flow(flow)
        model = ImageFlow(flow, preprocessing, dequantization, sampling, unconditional)
        if label_dropout and not model.can_guide:
            raise ValueError(
                "label_dropout needs a class-conditional flow with a 'no label' embedding: set "
                "model.flow.init_args.num_classes and label_embedding_dim > 0"
            )
        # Plain data only (checkpoints are read with weights_only=True). iw_samples only affects
        # testing, so `glowapp test --model.iw_samples S` is not overridden by the value at fit.
        self.save_hyperparameters(
            {
                **model.config,
                "lr": lr,
                "warmup_steps": warmup_steps,
                "lr_schedule": lr_schedule,
                "weight_decay": weight_decay,
                "class_weight": class_weight,
                "label_dropout": label_dropout,
                "noise_seed": noise_seed,
                "memory_saving": memory_saving,
                "channels_last": channels_last,
            }
        )
        self.iw_samples = iw_samples
        model.flow.use_memory_saving(memory_saving).use_channels_last(channels_last)
        self.model = model
        self.register_state_dict_post_hook(_strip_model_prefix)
        self.register_load_state_dict_pre_hook(_add_model_prefix)
        self.train_bpd, self.val_bpd, self.test_bpd = MeanMetric(), MeanMetric(), MeanMetric()
        self.test_bpd_iw, self.val_accuracy, self.test_accuracy = (MeanMetric() for _ in range(3))

    # ---- the ImageFlow's parts and API (so code written for the module keeps working) -------
    @property
    def flow(self) -> MultiScaleFlow:
        return self.model.flow

    @property
    def preprocess(self) -> torch.nn.Module:
        return self.model.preprocess

    @property
    def dequantizer(self) -> torch.nn.Module:
        return self.model.dequantizer

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.model.image_shape

    @property
    def num_dims(self) -> int:
        return self.model.num_dims

    @property
    def flow_spec(self) -> dict[str, Any]:
        return self.model.flow_spec

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    @property
    def null_label(self) -> int | None:
        return self.model.null_label

    def log_prob_y(self, y: Tensor, labels: Tensor | None = None) -> Tensor:
        """See :meth:`ImageFlow.log_prob_y`."""
        return self.model.log_prob_y(y, labels)

    def bits_per_dim(
        self,
        images: Tensor,
        noise: bool = True,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """See :meth:`ImageFlow.bits_per_dim`."""
        return self.model.bits_per_dim(images, noise, generator, labels)

    def bits_per_dim_iw(
        self,
        images: Tensor,
        samples: int,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """See :meth:`ImageFlow.bits_per_dim_iw`."""
        return self.model.bits_per_dim_iw(images, samples, generator, labels)

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> Tensor:
        """See :meth:`ImageFlow.sample` (here ``temperature`` defaults to 1)."""
        return self.model.sample(n, temperature, generator, labels, guidance, denoise)

    def encode(
        self, images: Tensor, noise: bool = False, labels: Tensor | None = None
    ) -> list[Tensor]:
        """See :meth:`ImageFlow.encode`."""
        return self.model.encode(images, noise, labels)

    def decode(
        self,
        latents: Sequence[Tensor],
        labels: Tensor | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> Tensor:
        """See :meth:`ImageFlow.decode`."""
        return self.model.decode(latents, labels, guidance, denoise)

    def generate(
        self,
        latents: Sequence[Tensor],
        labels: Tensor | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> Tensor:
        """See :meth:`ImageFlow.generate`."""
        return self.model.generate(latents, labels, guidance, denoise)

    # ---- checkpoints ---------------------------------------------------------------------------
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
        """Drop the 1×1 convs' cached matrices and the flow's folded inference weights
        (:mod:`glowapp.flows.folding`). Weight averaging swaps weights through ``.data``, which
        version counters do not see, so this runs whenever weights may have been swapped."""
        for m in self.modules():
            if isinstance(m, InvertibleChannelMatrix):
                m.clear_cache()
        self.flow.clear_caches()

    def on_validation_epoch_start(self) -> None:
        self.clear_caches()

    def on_validation_epoch_end(self) -> None:
        self.clear_caches()

    def on_test_epoch_start(self) -> None:
        self.clear_caches()

    def on_train_end(self) -> None:
        self.clear_caches()

    # ---- training -----------------------------------------------------------------------------
    def noise_generator(self, stage: int, index: int) -> torch.Generator:
        """The random draws of batch ``index`` of ``stage`` (TRAIN, VAL, TEST, TEST_IW: the
        dequantisation noise; LABEL_DROPOUT: which labels are dropped)."""
        generator = torch.Generator(device=self.device)
        key = (int(self.hparams.noise_seed), stage, index, self.global_rank)
        generator.manual_seed(hash(key) & 0x7FFF_FFFF_FFFF)
        return generator

    def labels_of(self, batch: tuple[Tensor, Tensor]) -> Tensor | None:
        """The batch's labels if the flow is class-conditional, else None."""
        return batch[1] if self.flow.num_classes else None

    def drop_labels(self, labels: Tensor | None, index: int) -> Tensor | None:
        """Training labels with a ``label_dropout`` share replaced by "no label" (reproducibly,
        keyed like the dequantisation noise by the step)."""
        rate = self.hparams.get("label_dropout", 0.0)
        if labels is None or not rate:
            return labels
        generator = self.noise_generator(LABEL_DROPOUT, index)
        drop = torch.rand(labels.shape, generator=generator, device=self.device) < rate
        labels = labels.to(self.device)
        return torch.where(drop, torch.full_like(labels, self.model.null_label), labels)

    def model_step(
        self, batch: tuple[Tensor, Tensor], stage: int, index: int
    ) -> tuple[Tensor, Tensor | None]:
        """Bits/dim ``[B]`` of a batch, dequantised with the noise keyed by ``(stage, index)``,
        and the class logits ``[B, K]`` of a class-conditional flow (None otherwise). Training
        batches lose a ``label_dropout`` share of their labels."""
        generator = self.noise_generator(stage, index)
        labels = self.labels_of(batch)
        if stage == TRAIN:
            labels = self.drop_labels(labels, index)
        return self.model.bits_and_logits(batch[0], True, generator, labels)

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


def _strip_model_prefix(
    module: torch.nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    """State-dict hook: the ImageFlow's weights under ``flow.*`` / ``dequantizer.*``."""
    head = f"{prefix}{MODEL}."
    for key in [k for k in state if k.startswith(head)]:
        state[prefix + key[len(head) :]] = state.pop(key)


def _add_model_prefix(
    module: torch.nn.Module, state: dict[str, Any], prefix: str, *args: Any
) -> None:
    """Load hook: the stored ``flow.*`` / ``dequantizer.*`` weights go to the ImageFlow."""
    head = f"{prefix}{MODEL}."
    own = tuple(f"{prefix}{name}." for name, _ in module.model.named_children())
    for key in [k for k in state if k.startswith(own)]:
        state[head + key[len(prefix) :]] = state.pop(key)


def load_module(
    name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> GlowModule:
    """Load a checkpoint (a path or a shipped model's name) as a :class:`GlowModule` on
    ``device``, in eval mode — for training-side code; tools and Python use the lighter
    :func:`glowapp.load`.

    The file is read and checked once (:func:`~glowapp.checkpointing.read_checkpoint`);
    checkpoints of glowapp < 0.2 (flat ``arch``, ``levels``, … hyper-parameters) are translated
    by :func:`~glowapp.checkpointing.upgrade_hparams`.

    Raises:
        CheckpointError: no such file or shipped model, what ``read_checkpoint`` raises, or the
            weights do not fit the stored hyper-parameters.
    """
    target = resolve_device(device)
    path = resolve_checkpoint(name_or_path)
    data, checkpoint = read_checkpoint(path)
    hparams = upgrade_hparams(checkpoint["hyper_parameters"])
    try:
        # Keyword arguments override the stored hyper-parameters (old keys are dropped).
        module = GlowModule.load_from_checkpoint(
            io.BytesIO(data), map_location=target, weights_only=True, **hparams
        )
    except CheckpointError as err:
        raise CheckpointError(err.problem, path) from None
    except (RuntimeError, TypeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"checkpoint does not fit glowapp's GlowModule: {first_line(err)}", path
        ) from None
    return module.to(target).eval()
