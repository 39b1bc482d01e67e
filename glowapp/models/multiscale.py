"""The multi-scale architecture shared by Glow, RealNVP and NICE (Dinh et al. 2017, §3.6)."""

from __future__ import annotations

import functools
import inspect
import math
import weakref
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from glowapp.flows.base import (
    Bijection,
    forward_with,
    inverse_with,
    note_weight_writes,
    zero_logdet,
)
from glowapp.flows.batchnorm import BatchNormFlow
from glowapp.flows.conditioning import Condition, LabelEmbedding
from glowapp.flows.folding import InferencePlan
from glowapp.flows.invertible_backprop import invertible_forward
from glowapp.flows.split import Split, TopPrior, standard_normal_log_prob

#: Each flow's folded levels (None: nothing to fold), built on first use. Kept outside the
#: module so that copies, pickles and state dicts of a flow never carry them.
_PLANS: weakref.WeakKeyDictionary[MultiScaleFlow, InferencePlan | None] = (
    weakref.WeakKeyDictionary()
)


def as_hw(image_size: int | Sequence[int] | None) -> tuple[int, int]:
    """``(H, W)`` from an int, a pair, or None (``(0, 0)`` = not known yet)."""
    if image_size is None:
        return (0, 0)
    if isinstance(image_size, int):
        return (image_size, image_size)
    h, w = (int(v) for v in image_size)
    return (h, w)


class MultiScaleFlow(nn.Module):
    """A stack of levels with factor-out between them and a learned top prior.

    Level ``i`` applies its bijection ``f_i``; every level but the last then factors out half of
    its channels through a :class:`Split`, and the last level's output goes through a
    :class:`TopPrior`. All latents are standardised (see :mod:`glowapp.flows.split`), so the map
    ``x -> (ε_1, …, ε_L)`` is one bijection with a standard-normal base:

    ``log p(x) = Σ_i log N(ε_i; 0, I) + log|det ∂(ε_1..ε_L)/∂x|``.

    Subclasses build ``levels`` and say how much each level downsamples (``2**squeezes``) and
    how many channels each latent has.

    Class-conditional (``num_classes = K > 0``): ``encode``/``decode`` and ``log_prob`` take
    labels ``y`` ``[B]`` and give ``log p(x | y)``; without labels, ``log_prob`` is the marginal
    ``log p(x) = log (1/K) Σ_y p(x | y)`` (uniform class prior) and ``sample`` draws the labels
    uniformly. :meth:`log_prob_per_class` gives every ``log p(x | y)``; its argmax is the
    model's own (Bayes) classifier. Two ways:

    * ``label_embedding_dim = 0`` (Kingma & Dhariwal 2018): only the top prior's mean and
      log-std depend on ``y`` (see :class:`TopPrior`). A linear classifier on the spatially
      averaged top activation ``h_L`` (before its prior) predicts ``y``
      (:meth:`log_prob_and_logits`); it is zero-initialised.
    * ``label_embedding_dim = E > 0``: the flow embeds the labels once
      (:class:`~glowapp.flows.conditioning.LabelEmbedding`) and hands the embedding, as a
      :class:`~glowapp.flows.conditioning.Condition`, to every level (conditional bijections:
      the subclass builds them with ``cond_dim = E``), every split prior and the top prior. The
      embedding has a row for "no label", :attr:`null_label` ``= K``, which every label argument
      accepts: ``p(x | ∅)`` is the unconditional model that label dropout trains. Classifier-free
      guidance (``guidance = w``, :meth:`decode`, :meth:`sample`) runs every layer's inverse
      with the parameters ``(1 + w)·θ(y) − w·θ(∅)`` (see :mod:`glowapp.flows.conditioning`);
      densities are never guided. There is no classifier head: ``h_L`` is computed from the
      label, so a head on it could read the label back; use :meth:`log_prob_per_class`.

    Memory layout: :meth:`use_channels_last` stores the 4-D weights and runs every level on
    channels-last (NHWC) activations, end to end: squeezes keep the layout and 1×1 maps become
    matrix products (:func:`~glowapp.flows.base.channel_linear`). The maths is the same; only
    the kernels change (oneDNN's NHWC kernels are faster on CPU, as are cuDNN's under mixed
    precision).

    Inference: in eval mode with autograd off (``torch.no_grad()``, ``torch.inference_mode()``)
    and no autocast, unconditional passes (and the legacy class-conditional model's, whose
    levels see no label) run a folded copy of the levels
    (:class:`~glowapp.flows.folding.InferencePlan`): ActNorm composed with the 1×1 convolution
    after it, the zero-initialised convolutions' scales folded into their weights, channels-last
    throughout, and no log-dets where only samples are wanted (:meth:`decode`). Same results to
    float tolerance; training, gradients and conditional passes use the layers themselves.
    Folded weights are recomputed when a parameter changes (version counters, storage); after
    writes through ``.data`` call :meth:`clear_caches`. :meth:`use_fast_inference` turns it off.
    """

    def __init__(
        self,
        in_channels: int,
        levels: Sequence[Bijection],
        level_channels: Sequence[int],
        squeezes: Sequence[int],
        image_size: int | Sequence[int] | None = None,
        num_classes: int = 0,
        label_embedding_dim: int = 0,
    ) -> None:
        super().__init__()
        if in_channels <= 0:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        if label_embedding_dim < 0 or (label_embedding_dim and num_classes < 1):
            raise ValueError(
                f"label_embedding_dim={label_embedding_dim} needs a class-conditional model "
                "(num_classes > 0); use 0 for an unconditional one"
            )
        cond_dim = label_embedding_dim
        if cond_dim and not all(level.conditional for level in levels):
            raise ValueError(
                "label_embedding_dim > 0 hands the labels to every level, but some levels do not "
                "take a condition (Bijection.conditional is False); build them conditional"
            )
        self.in_channels = in_channels
        self.num_classes = num_classes
        # Recompute activations from outputs in the backward pass instead of storing them
        # (a training option: see use_memory_saving).
        self.memory_saving = False
        self.memory_format = torch.contiguous_format
        self.fast_inference = True
        self.levels = nn.ModuleList(levels)
        self.splits = nn.ModuleList(Split(c, cond_dim) for c in level_channels[:-1])
        # The legacy conditional model (cond_dim = 0) keeps its label table in the top prior.
        self.top = TopPrior(level_channels[-1], 0 if cond_dim else num_classes, cond_dim)
        self.label_embedding = LabelEmbedding(num_classes, cond_dim) if cond_dim else None
        legacy = num_classes and not cond_dim
        self.classifier = nn.Linear(level_channels[-1], num_classes) if legacy else None
        if self.classifier is not None:
            nn.init.zeros_(self.classifier.weight)
            nn.init.zeros_(self.classifier.bias)
        self._latent_channels = self._latent_channel_list(level_channels)
        # Cumulative downsampling factor at each level's output.
        self._factors = [2 ** sum(squeezes[: i + 1]) for i in range(len(squeezes))]
        # Image size lives in a buffer so it travels with checkpoints; (0, 0) means "learn it from
        # the first batch".
        self.register_buffer("image_hw", torch.tensor(as_hw(image_size), dtype=torch.long))
        # Its value as Python ints, so that shape checks never read the buffer (a device sync on
        # GPUs, a graph break for torch.compile); refreshed whenever a state dict is loaded.
        self._hw = as_hw(image_size)
        self.register_load_state_dict_post_hook(MultiScaleFlow._refresh_hw)
        if self.has_image_size:
            self._check_size(*self.image_size)

    @staticmethod
    def _latent_channel_list(level_channels: Sequence[int]) -> list[int]:
        split_out = [c - c // 2 for c in level_channels[:-1]]
        return [*split_out, level_channels[-1]]

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Record each architecture's constructor arguments, so :func:`~glowapp.models.spec.flow_spec`
        can describe any flow as plain data (class path + arguments)."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: MultiScaleFlow, *args: object, **kw: object) -> None:
            if "_init_args" not in self.__dict__:  # the outermost (most derived) constructor wins
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self.__dict__["_init_args"] = dict(list(bound.arguments.items())[1:])
            init(self, *args, **kw)

        cls.__init__ = recording_init  # type: ignore[method-assign]

    @property
    def init_args(self) -> dict[str, object]:
        """The arguments this flow's class was constructed with (``{}`` for a bare MultiScaleFlow)."""
        return dict(self.__dict__.get("_init_args", {}))

    def use_memory_saving(self, enabled: bool = True) -> MultiScaleFlow:
        """Recompute each level's activations from its output during backprop instead of storing
        them (see :mod:`glowapp.flows.invertible_backprop`): slower, activation memory stops
        growing with depth. Not with batch-norm layers, whose batch statistics are not invertible."""
        if enabled and any(isinstance(m, BatchNormFlow) for m in self.modules()):
            raise ValueError(
                "memory_saving cannot be combined with batch_norm (batch statistics are not "
                "invertible); turn one of them off"
            )
        self.memory_saving = enabled
        return self

    def use_channels_last(self, enabled: bool = True) -> MultiScaleFlow:
        """Run on channels-last (``enabled``) or contiguous NCHW weights and activations."""
        self.memory_format = torch.channels_last if enabled else torch.contiguous_format
        return self.to(memory_format=self.memory_format)

    def _layout(self, t: Tensor) -> Tensor:
        return t.contiguous(memory_format=self.memory_format)

    # ---- inference ------------------------------------------------------------------------
    def use_fast_inference(self, enabled: bool = True) -> MultiScaleFlow:
        """Use the folded levels for inference (``enabled``, the default) or the layers
        themselves always (see the class docstring)."""
        self.fast_inference = enabled
        return self

    def clear_caches(self) -> None:
        """Forget the folded levels and every cached matrix, in this process: needed after
        writes through ``.data`` (which keep version counters) or replacing layers."""
        _PLANS.pop(self, None)
        note_weight_writes()

    def _inference_plan(self, cond: Condition | None) -> InferencePlan | None:
        """The folded levels when this pass may use them: eval mode, autograd and autocast off;
        else None (the layers themselves run). A conditional pass uses them too: its
        condition goes to the layers that take one."""
        if (
            self.training
            or not self.fast_inference
            or torch.is_grad_enabled()
            or torch.is_autocast_enabled(self.image_hw.device.type)
        ):
            return None
        if self not in _PLANS:
            _PLANS[self] = InferencePlan.build(self.levels, self.splits)
        return _PLANS[self]

    # ---- shapes -------------------------------------------------------------------------
    @staticmethod
    def _refresh_hw(module: nn.Module, incompatible_keys: object) -> None:
        if isinstance(module, MultiScaleFlow):
            module._hw = (int(module.image_hw[0]), int(module.image_hw[1]))

    @property
    def has_image_size(self) -> bool:
        return self._hw[0] > 0

    @property
    def image_size(self) -> tuple[int, int]:
        if not self.has_image_size:
            raise RuntimeError(
                "this model does not know its image size yet: pass image_size=... when building "
                "it, or encode a batch first"
            )
        return self._hw

    @property
    def divisor(self) -> int:
        """Height and width must be multiples of this (``2**total squeezes``)."""
        return self._factors[-1]

    def _check_size(self, h: int, w: int) -> None:
        d = self.divisor
        if h % d or w % d or h == 0 or w == 0:
            raise ValueError(
                f"image size {h}x{w} cannot be squeezed by this model: height and width must be "
                f"multiples of {d} (= 2**number of squeezes); use fewer levels or another size"
            )

    def latent_shapes(self) -> list[tuple[int, int, int]]:
        """``[(C_i, H_i, W_i)]`` of every latent, finest first, coarsest (top) last."""
        h, w = self.image_size
        return [
            (c, h // f, w // f) for c, f in zip(self._latent_channels, self._factors, strict=True)
        ]

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"expected a batch [B, C, H, W], got a tensor of shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"model expects {self.in_channels} channels, got {x.shape[1]} (input shape {tuple(x.shape)})"
            )
        h, w = x.shape[2], x.shape[3]
        if self.has_image_size:
            if (h, w) != self.image_size:
                hh, ww = self.image_size
                raise ValueError(f"model was built for {hh}x{ww} images, got {h}x{w}")
        else:
            self._check_size(h, w)
            self.image_hw.copy_(torch.tensor([h, w]))
            self._hw = (h, w)

    @property
    def null_label(self) -> int | None:
        """The label meaning "no label" (``num_classes``), or None if this flow has none (only
        a flow with label embeddings has: ``label_embedding_dim > 0``)."""
        return None if self.label_embedding is None else self.label_embedding.null_label

    def check_labels(self, labels: Tensor | None, batch: int) -> Tensor | None:
        """Validate class labels for a batch of ``batch``: None, or int64 ``[batch]`` in ``0..K−1``
        (``0..K`` with :attr:`null_label` ``K``)."""
        if labels is None:
            return None
        if not self.num_classes:
            raise ValueError(
                "labels were given to an unconditional model (num_classes=0); train with "
                "num_classes > 0 for class-conditional generation, or pass no labels"
            )
        if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.ndim != 1:
            raise ValueError(
                f"labels must be an integer tensor [B], got {labels.dtype} {tuple(labels.shape)}"
            )
        if labels.shape[0] != batch:
            raise ValueError(f"got {labels.shape[0]} labels for a batch of {batch}")
        highest = self.num_classes - 1 if self.null_label is None else self.null_label
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > highest):
            allowed = (
                f"0..{highest} (num_classes={self.num_classes}; this model has no null label: "
                "it needs label_embedding_dim > 0)"
                if self.null_label is None
                else f"0..{highest} (num_classes={self.num_classes}, {highest} = null_label, "
                '"no label")'
            )
            raise ValueError(
                f"labels must be in {allowed}, got values in "
                f"{int(labels.min())}..{int(labels.max())}"
            )
        return labels.to(device=self.image_hw.device, dtype=torch.long)

    def _check_guidance(self, guidance: float) -> None:
        if not math.isfinite(guidance):
            raise ValueError(f"guidance must be a finite number, got {guidance}")
        if guidance and self.null_label is None:
            raise ValueError(
                f"classifier-free guidance (guidance={guidance}) needs a model with a null label: "
                "num_classes > 0 and label_embedding_dim > 0, trained with label dropout; use "
                "guidance=0 for this model"
            )

    def _condition(self, labels: Tensor | None, guidance: float = 0.0) -> Condition | None:
        """The levels' and priors' condition for checked ``labels`` (None without embeddings)."""
        if self.label_embedding is None:
            return None
        if labels is None:
            raise ValueError(
                f"the model is class-conditional (num_classes={self.num_classes}): pass the "
                "images' labels (y=...)"
            )
        embedding = self.label_embedding(labels)
        if not guidance:
            return Condition(embedding)
        null = self.label_embedding(torch.full_like(labels, self.label_embedding.null_label))
        return Condition(embedding, null, guidance)

    def _top_cond(self, labels: Tensor | None, cond: Condition | None) -> Tensor | Condition | None:
        """What the top prior is conditioned on: the Condition, or the labels (legacy mode)."""
        return labels if self.label_embedding is None else cond

    def _encode_levels(
        self, x: Tensor, cond: Condition | None = None
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """``x -> ([ε_1, …, ε_{L−1}], h_L, log|det|)``: every level, without the top prior."""
        self._check_input(x)
        plan = self._inference_plan(cond)
        if plan is not None:
            latents, h, logdet = plan.encode_levels(x, cond)
            return latents, self._layout(h), logdet
        latents: list[Tensor] = []
        logdet = zero_logdet(x)
        h = self._layout(x)
        saving = self.memory_saving and torch.is_grad_enabled()
        for i, level in enumerate(self.levels):
            h, ld = invertible_forward(level, h, cond) if saving else forward_with(level, h, cond)
            logdet = logdet + ld
            if i < len(self.splits):
                h, eps, ld = self.splits[i](h, cond)
                h = self._layout(h)  # the kept half is a channel slice: one layout per level
                latents.append(eps)
                logdet = logdet + ld
        return latents, h, logdet

    # ---- the public API -----------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> tuple[list[Tensor], Tensor]:
        """``x [B, C, H, W] -> ([ε_1, …, ε_L], log|det| [B])``, latents finest first.

        ``y``: labels ``[B]``, required by (and only by) a class-conditional model.
        """
        y = self.check_labels(y, x.shape[0])
        cond = self._condition(y)
        latents, h, logdet = self._encode_levels(x, cond)
        eps, ld = self.top(h, self._top_cond(y, cond))
        return [*latents, eps], logdet + ld

    def decode(
        self, latents: Sequence[Tensor], y: Tensor | None = None, guidance: float = 0.0
    ) -> Tensor:
        """Exact inverse of :meth:`encode`: ``[ε_1, …, ε_L] -> x`` (labels ``y`` if conditional).

        ``guidance = w ≠ 0``: classifier-free guidance (models with a :attr:`null_label` only).
        """
        return self._decode(latents, y, guidance, with_logdet=False)[0]

    def decode_with_logdet(
        self, latents: Sequence[Tensor], y: Tensor | None = None, guidance: float = 0.0
    ) -> tuple[Tensor, Tensor]:
        """:meth:`decode` plus ``log|det ∂x/∂(ε_1..ε_L)|`` ``[B]`` (of the guided map if guided)."""
        x, logdet = self._decode(latents, y, guidance, with_logdet=True)
        assert logdet is not None
        return x, logdet

    def _decode(
        self, latents: Sequence[Tensor], y: Tensor | None, guidance: float, with_logdet: bool
    ) -> tuple[Tensor, Tensor | None]:
        """:meth:`decode`, with the log-det if ``with_logdet`` (the folded levels skip it
        otherwise; the layers themselves always compute it)."""
        self._check_guidance(guidance)
        if len(latents) != len(self.levels):
            raise ValueError(
                f"expected {len(self.levels)} latents (one per level), got {len(latents)}"
            )
        y = self.check_labels(y, latents[-1].shape[0])
        cond = self._condition(y, guidance)
        h, logdet = self.top.inverse(latents[-1], self._top_cond(y, cond))
        dtype = next(self.parameters()).dtype
        plan = self._inference_plan(cond)
        if plan is not None:
            x, ld = plan.decode_levels(h.to(dtype), latents, with_logdet, cond)
            return self._layout(x), (logdet + ld if ld is not None else None)
        h = self._layout(h.to(dtype))
        for i in reversed(range(len(self.levels))):
            if i < len(self.splits):
                h, ld = self.splits[i].inverse(h, self._layout(latents[i]), cond)
                logdet = logdet + ld
            h, ld = inverse_with(self.levels[i], h, cond)
            logdet = logdet + ld
        return h, logdet

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``log p(x)`` in nats, ``[B]``: every level's prior plus the log-det.

        Class-conditional models: ``log p(x | y)`` with labels ``y`` ``[B]``, the marginal
        ``log (1/K) Σ_y p(x | y)`` without.
        """
        return self.log_prob_and_logits(x, y)[0]

    def log_prob_and_logits(
        self, x: Tensor, y: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """:meth:`log_prob` and the classifier's logits ``[B, K]`` (None without a classifier head:
        unconditional models and those with label embeddings).

        The logits are a linear map of ``h_L`` averaged over its pixels (Glow's classifier head).
        """
        y = self.check_labels(y, x.shape[0])
        if self.label_embedding is not None and y is None:
            per_class = self.log_prob_per_class(x)
            return torch.logsumexp(per_class, dim=1) - math.log(self.num_classes), None
        cond = self._condition(y)
        latents, h, logdet = self._encode_levels(x, cond)
        log_p = logdet + sum(
            (standard_normal_log_prob(eps) for eps in latents), torch.zeros_like(logdet)
        )
        logits = (
            None
            if self.classifier is None
            else self.classifier(h.mean(dim=(2, 3)).to(self.classifier.weight.dtype))
        )
        if self.num_classes and y is None:
            # Marginal over a uniform class prior: only the top prior sees the label.
            top = torch.logsumexp(self._top_per_class(h), dim=0) - math.log(self.num_classes)
        else:
            eps, ld = self.top(h, self._top_cond(y, cond))
            top = ld + standard_normal_log_prob(eps)
        return log_p + top, logits

    def _top_per_class(self, h: Tensor) -> Tensor:
        """The top prior's ``log N(ε; 0, I) + log-det`` for every real class: ``[K, B]`` (legacy
        mode, whose levels do not see the label)."""
        per_class = []
        for label in range(self.num_classes):
            labels = torch.full((h.shape[0],), label, dtype=torch.long, device=h.device)
            eps, ld = self.top(h, labels)
            per_class.append(ld + standard_normal_log_prob(eps))
        return torch.stack(per_class)

    def log_prob_per_class(self, x: Tensor) -> Tensor:
        """``log p(x | y)`` for every real class ``y = 0..K−1``: ``[B, K]`` nats.

        Its argmax is the model's Bayes classifier (uniform class prior), and its
        ``logsumexp − log K`` the marginal :meth:`log_prob`. With label embeddings every layer
        depends on the label, so the whole flow runs once per class, as one batch of ``K·B``
        images (``K`` times the memory of a :meth:`log_prob` call); in the legacy mode the levels
        run once and only the top prior per class.
        """
        if not self.num_classes:
            raise ValueError("log_prob_per_class needs a class-conditional model (num_classes > 0)")
        b, k = x.shape[0], self.num_classes
        if self.label_embedding is None:
            latents, h, logdet = self._encode_levels(x)
            log_p = logdet + sum(
                (standard_normal_log_prob(eps) for eps in latents), torch.zeros_like(logdet)
            )
            return log_p[:, None] + self._top_per_class(h).t()
        labels = torch.arange(k, device=self.image_hw.device).repeat_interleave(b)  # class-major
        repeated = x.expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        return self.log_prob(repeated, labels).view(k, b).t()

    def sample_latents(
        self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """Standard-normal latents scaled by ``temperature``: ``T · ε``, ``ε ~ N(0, I)``."""
        device = self.image_hw.device
        # With a (CPU) generator, draw on the CPU so the same seed gives the same samples anywhere.
        return [
            temperature
            * torch.randn(n, *shape, generator=generator, device=None if generator else device).to(
                device
            )
            for shape in self.latent_shapes()
        ]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
        guidance: float = 0.0,
    ) -> Tensor:
        """``n`` samples ``[n, C, H, W]`` in the space of ``x``; ``temperature`` scales every prior's std.

        Class-conditional models sample class ``labels[i]`` for sample ``i`` (``[n]``; the
        :attr:`null_label` samples the unconditional model), or classes drawn uniformly (from
        ``generator``) without labels. ``guidance = w ≠ 0``: classifier-free guidance (see
        :class:`MultiScaleFlow`; models with a null label only).
        """
        self._check_guidance(guidance)
        latents = self.sample_latents(n, temperature, generator)
        if self.num_classes and labels is None:
            device = None if generator else self.image_hw.device
            labels = torch.randint(self.num_classes, (n,), generator=generator, device=device)
        return self.decode(latents, labels, guidance)
