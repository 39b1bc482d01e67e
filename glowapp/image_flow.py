"""The trained density model over images, as a plain ``torch.nn.Module``: :class:`ImageFlow`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from glowapp.flows.dequantization import importance_weighted
from glowapp.models import MultiScaleFlow, build_flow, flow_spec
from glowapp.options import Dequantization, Preprocessing, Sampling, as_dict, as_option

__all__ = ["ImageFlow"]


class ImageFlow(nn.Module):
    """A density over images: dequantisation, preprocessing and a flow, with everything it does.

    The model (all terms counted, nats):

    * pixels ``p ∈ {0..255}`` are quantised to levels ``k ∈ {0..K−1}``, ``K = 2^n_bits``;
    * dequantisation gives ``y = (k + u) / K`` with ``u ~ q(u | k)`` (uniform or learned), or, for
      noise-augmented models, ``ỹ = (k + ½)/K + σ ε``;
    * the preprocessing bijection ``x = y − ½`` (or a logit) and the flow
      ``x → (ε_1, …, ε_L)`` with standard-normal latents give ``log p_Y(y) = log p_X(x) +
      log|det ∂x/∂y|``;
    * bits/dim ``= −(log p_Y(y) − log q(u | k) − D log K) / (D ln 2)`` (``D = C·H·W``).

    With uniform or variational dequantisation that is the papers' bound on the discrete
    likelihood. With Gaussian noise (``dequantization.kind == "gaussian"``) it is the density of
    the *noisy* image, labelled as such by :attr:`bits_label`.

    Generation: :meth:`sample` decodes standard-normal latents scaled by a temperature,
    optionally with classifier-free guidance (class-conditional flows trained with label
    dropout; :mod:`glowapp.flows.conditioning`) and a denoising step (Tweedie's formula with the
    model's own score, ``x̂ = x̃ + σ² ∇ log p_σ(x̃)``; Zhai et al. 2024). :attr:`sampling` holds
    the defaults a checkpoint records. :meth:`encode` / :meth:`decode` map images to latents and
    back.

    This is the math object (as improved-diffusion's ``GaussianDiffusion``): no Lightning, no
    files. :class:`glowapp.GlowModule` holds one and trains it; :func:`glowapp.load` reads one
    from a checkpoint or a shipped model's name.

    Args:
        flow: the flow, built for a known image size.
        preprocessing: ``n_bits`` and the logit's ``α`` (:class:`~glowapp.options.Preprocessing`).
        dequantization: uniform, variational or Gaussian noise
            (:class:`~glowapp.options.Dequantization`).
        sampling: default temperature, guidance and denoising (:class:`~glowapp.options.Sampling`).
        unconditional: use a class-conditional flow trained with label dropout as the
            unconditional model it also is. It then takes no labels (:attr:`num_classes` is
            0): its density is the "no label" branch ``p(x | ∅)`` (bits/dim, scores, editing:
            :meth:`encode` / :meth:`decode` are that branch's bijection), while :meth:`sample`
            / :meth:`generate` draw each sample from one of the classes (stratified: sample
            ``i`` of a call from class ``i mod K``) with classifier-free guidance — a sampler
            that, like a temperature below 1, sharpens the samples rather than following
            ``p(x | ∅)`` (guidance 0 samples the class mixture ``(1/K) Σ_y p(x | y)``).

    Images are ``[B, C, H, W]``, uint8 ``0..255`` or float in ``[0, 1]`` on input, float in
    ``[0, 1]`` (quantised to ``n_bits``) on output.
    """

    def __init__(
        self,
        flow: MultiScaleFlow,
        preprocessing: Preprocessing | Mapping[str, Any] = Preprocessing(),
        dequantization: Dequantization | Mapping[str, Any] = Dequantization(),
        sampling: Sampling | Mapping[str, Any] = Sampling(),
        unconditional: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(flow, Mapping):  # a checkpoint's plain-data spec
            flow = build_flow(flow)
        if not isinstance(flow, MultiScaleFlow):
            raise TypeError(
                f"flow must be a MultiScaleFlow (Glow, RealNVP, NICE, TarFlow, …), got {flow!r}"
            )
        if not flow.has_image_size:
            raise ValueError(
                "the flow must be built for a known image size: pass image_size=(H, W) "
                "(the CLI links it from the DataModule)"
            )
        self.preprocessing = as_option(preprocessing, Preprocessing)
        self.dequantization = as_option(dequantization, Dequantization)
        self.sampling = as_option(sampling, Sampling)
        if self.dequantization.noisy and self.preprocessing.logit_alpha is not None:
            raise ValueError(
                "Gaussian noise augmentation leaves [0, 1], where the logit is undefined: use "
                "preprocessing.logit_alpha: null (x = y − ½) with dequantization.kind gaussian"
            )
        if unconditional and getattr(flow, "null_label", None) is None:
            raise ValueError(
                "unconditional=True needs a class-conditional flow with a 'no label' embedding "
                "(num_classes > 0 and label_embedding_dim > 0, trained with label dropout)"
            )
        self.unconditional = bool(unconditional)
        self.flow = flow
        self.preprocess = self.preprocessing.build()
        self.dequantizer = self.dequantization.build(flow.in_channels, self.preprocessing.n_bits)
        self.image_shape: tuple[int, int, int] = (flow.in_channels, *flow.image_size)
        self.num_dims = math.prod(self.image_shape)

    # ---- what it is -------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The model as plain data (what checkpoints store): flow spec and the three options."""
        return {
            "flow": flow_spec(self.flow),
            "preprocessing": as_dict(self.preprocessing),
            "dequantization": as_dict(self.dequantization),
            "sampling": as_dict(self.sampling),
            "unconditional": self.unconditional,
        }

    @property
    def flow_spec(self) -> dict[str, Any]:
        """The flow as plain data (class path and constructor arguments)."""
        return flow_spec(self.flow)

    @property
    def num_classes(self) -> int:
        """Classes of a class-conditional model (0: unconditional, or used as such)."""
        return 0 if self.unconditional else self.flow.num_classes

    @property
    def null_label(self) -> int | None:
        """The label meaning "no label" of a class-conditional model trained with label dropout
        (the one that classifier-free guidance contrasts with; a label argument may be it), else
        None (also for a model used unconditionally, which takes no labels)."""
        return None if self.unconditional else getattr(self.flow, "null_label", None)

    @property
    def can_guide(self) -> bool:
        """Whether samples can use classifier-free guidance (a flow trained with label dropout)."""
        return getattr(self.flow, "null_label", None) is not None

    def flow_labels(self, labels: Tensor | None, n: int) -> Tensor | None:
        """The labels ``[n]`` the flow's densities, :meth:`encode` and :meth:`decode` use:
        ``labels`` as given; "no label" for every image of a model used unconditionally.

        Raises:
            ValueError: labels for a model used unconditionally (it takes none).
        """
        if not self.unconditional:
            return labels
        if labels is not None:
            raise ValueError(
                "this model is unconditional (the 'no label' branch of a class-conditional "
                "flow) and takes no labels; load the class-conditional model to condition on a "
                "class"
            )
        return torch.full((n,), self.flow.null_label, dtype=torch.long, device=self.device)

    @property
    def noise_sigma(self) -> float:
        """Std of the Gaussian noise the model was trained on (0 for dequantised models)."""
        return self.dequantization.sigma if self.dequantization.noisy else 0.0

    @property
    def bits_label(self) -> str:
        """What :meth:`bits_per_dim` measures, for printing beside its numbers."""
        if self.dequantization.noisy:
            return f"noisy-image bits/dim (σ = {self.noise_sigma:g}; not the papers' bits/dim)"
        return "bits/dim"

    @property
    def device(self) -> torch.device:
        return self.flow.image_hw.device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.flow.parameters()).dtype

    def extra_repr(self) -> str:
        c, h, w = self.image_shape
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        return f"{type(self.flow).__name__} on {c}x{h}x{w} images{classes}, {self.bits_label}"

    # ---- likelihood -------------------------------------------------------------------------
    def check_images(self, images: Tensor) -> Tensor:
        """``images`` as a ``[B, C, H, W]`` batch on the model's device (one image ``[C, H, W]``
        becomes a batch of one).

        Raises:
            ValueError: a shape other than the model's.
        """
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images of shape [B, {', '.join(map(str, self.image_shape))}] for this "
                f"model, got {tuple(images.shape)}"
            )
        images = images.to(self.device)
        if images.dtype == torch.uint8 and self.dtype == torch.float64:
            # The pixel pipeline reads uint8 as float32 and keeps a float input's dtype: a
            # float64 model gets its levels, noise and bits/dim in float64 this way (k/255 is exact).
            images = images.to(torch.float64) / 255
        return images

    def log_prob_y(self, y: Tensor, labels: Tensor | None = None) -> Tensor:
        """``log p_Y(y)`` ``[B]`` (nats) of dequantised (or noisy) images ``y`` — differentiable in ``y``.

        Class-conditional models: ``log p_Y(y | labels)``, or the marginal over classes without labels.
        """
        x, logdet_pre = self.preprocess(y)
        return self.flow.log_prob(x, self.flow_labels(labels, len(x))) + logdet_pre

    def bits_and_logits(
        self,
        images: Tensor,
        noise: bool = True,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Bits/dim ``[B]`` (every term, the dequantisation's ``log q`` included) and the class
        logits ``[B, K]`` of a class-conditional flow's classifier head (None otherwise)."""
        images = self.check_images(images)
        if noise:
            y, log_q = self.dequantizer(images, generator)
        else:
            y, log_q = self.preprocess.dequantize(images, noise=False), 0.0
        x, logdet_pre = self.preprocess(y)
        log_px, logits = self.flow.log_prob_and_logits(x, self.flow_labels(labels, len(x)))
        return self.preprocess.bits_per_dim(log_px, logdet_pre, self.num_dims, log_q), logits

    def bits_per_dim(
        self,
        images: Tensor,
        noise: bool = True,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Bits/dim ``[B]`` of images ``[B, C, H, W]`` (see :attr:`bits_label` for which kind).

        With ``noise=True`` one draw of the model's dequantisation (uniform: the papers'
        estimate; variational: a draw of the bound, ``log q`` included; Gaussian: a noisy copy;
        ``generator`` on the model's device makes it reproducible); with ``noise=False`` the
        bin centres. ``labels`` ``[B]`` condition a class-conditional model (the marginal over
        classes without them).
        """
        return self.bits_and_logits(images, noise, generator, labels)[0]

    def log_prob(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        noise: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``log P(images)`` ``[B]`` in nats: ``−bits_per_dim · D · ln 2`` (bin centres by default)."""
        bpd = self.bits_per_dim(images, noise=noise, generator=generator, labels=labels)
        return -bpd * self.num_dims * math.log(2.0)

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
        images = self.check_images(images)
        draws = []
        for _ in range(samples):
            y, log_q = self.dequantizer(images, generator)
            draws.append(self.log_prob_y(y, labels) - log_q)
        log_py = importance_weighted(torch.stack(draws))
        return self.preprocess.bits_per_dim(log_py, torch.zeros_like(log_py), self.num_dims)

    # ---- generation -------------------------------------------------------------------------
    def sampling_options(
        self,
        temperature: float | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> Sampling:
        """The settings a call uses: each given value, else the model's default (:attr:`sampling`).

        Raises:
            ValueError: guidance ≠ 0 for a model without a "no label" (not trained with label
                dropout), or denoising a model trained without noise.
        """
        defaults = self.sampling
        temperature = defaults.temperature if temperature is None else float(temperature)
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature:g}")
        if guidance is None:
            guidance = defaults.guidance if self.can_guide else 0.0
        guidance = float(guidance)
        if guidance and not self.can_guide:
            why = "has no null label" if self.flow.num_classes else "is unconditional"
            raise ValueError(
                "classifier-free guidance needs a class-conditional model trained with label "
                f"dropout; this one {why}: use --guidance 0"
            )
        if denoise is None:
            denoise = self.dequantization.noisy if defaults.denoise is None else defaults.denoise
        if denoise and not self.dequantization.noisy:
            raise ValueError(
                "denoising needs a model trained with Gaussian noise (dequantization.kind: "
                "gaussian); this one is not: use --no-denoise"
            )
        return Sampling(temperature=temperature, guidance=guidance, denoise=bool(denoise))

    def draw_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """Uniformly drawn classes ``[n]`` of a class-conditional model (None if unconditional)."""
        if not self.num_classes:
            return None
        device = None if generator is not None else self.device
        labels = torch.randint(self.num_classes, (n,), generator=generator, device=device)
        return labels.to(self.device)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> Tensor:
        """``n`` images ``[n, C, H, W]`` in ``[0, 1]``.

        ``temperature`` scales every prior's std; ``guidance`` is the classifier-free guidance
        weight ``w`` and ``denoise`` the Tweedie step (each defaults to :attr:`sampling`).
        Class-conditional models sample classes ``labels`` ``[n]``, or uniformly drawn classes
        (from ``generator``, after the latents).
        """
        options = self.sampling_options(temperature, guidance, denoise)
        latents = self.flow.sample_latents(n, options.temperature, generator)
        if labels is None:
            labels = self.draw_labels(n, generator)
        return self.generate(latents, labels, options.guidance, options.denoise)

    @torch.no_grad()
    def generate(
        self,
        latents: Sequence[Tensor],
        labels: Tensor | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> Tensor:
        """Samples from latent noise: images in ``[0, 1]``. What :meth:`sample` and
        :func:`glowapp.generate.sample_grid` decode their noise with.

        The same as :meth:`decode`, except for a model used unconditionally: sample ``i`` is
        decoded from class ``i mod K`` (with guidance, if any), not through the "no label"
        branch.
        """
        if not self.unconditional:
            return self.decode(latents, labels, guidance, denoise)
        self.flow_labels(labels, 0)  # refuses labels
        options = self.sampling_options(0.0, guidance, denoise)
        n = len(latents[0])
        classes = torch.arange(n, device=self.device) % self.flow.num_classes
        return self._decode(latents, classes, options.guidance, bool(options.denoise))

    @torch.no_grad()
    def encode(
        self, images: Tensor, noise: bool = False, labels: Tensor | None = None
    ) -> list[Tensor]:
        """Images → latents ``[ε_1, …, ε_L]`` (bin centres unless ``noise``).

        ``labels`` ``[B]``: required by a class-conditional model.
        """
        x, _ = self.preprocess.encode_images(self.check_images(images), noise=noise)
        return self.flow.encode(x, self.flow_labels(labels, len(x)))[0]

    @torch.no_grad()
    def decode(
        self,
        latents: Sequence[Tensor],
        labels: Tensor | None = None,
        guidance: float | None = None,
        denoise: bool | None = None,
    ) -> Tensor:
        """Latents → images in ``[0, 1]`` quantised to ``n_bits`` (``labels`` if class-conditional).

        ``guidance`` and ``denoise`` as in :meth:`sample` (defaults: :attr:`sampling`).
        """
        # A model used unconditionally decodes through its fixed editing branch: no guidance.
        options = self.sampling_options(0.0, 0.0 if self.unconditional else guidance, denoise)
        labels = self.flow_labels(labels, len(latents[0]))
        return self._decode(latents, labels, options.guidance, bool(options.denoise))

    def _decode(
        self, latents: Sequence[Tensor], labels: Tensor | None, guidance: float, denoise: bool
    ) -> Tensor:
        x = (
            self.flow.decode(latents, labels, guidance=guidance)
            if guidance
            else self.flow.decode(latents, labels)
        )
        if denoise:
            x = self.denoise(x, labels, guidance)
        return self.preprocess.to_images(x)

    def score(self, x: Tensor, labels: Tensor | None = None, guidance: float = 0.0) -> Tensor:
        """``∇ₓ log p(x)`` ``[B, C, H, W]`` in the flow's space (``log p(x | labels)`` if given).

        With ``guidance = w``: ``s(x | y) + w · (s(x | y) − s(x | ∅))``, the score of the
        guided density ``p(x | y)^{1+w} / p(x | ∅)^w``.
        """
        with torch.enable_grad():
            x = x.detach().float().requires_grad_(True)
            log_p = self.flow.log_prob(x, labels)
            if guidance:
                null = torch.full_like(labels, self.flow.null_label)
                log_p = (1 + guidance) * log_p - guidance * self.flow.log_prob(x, null)
            (grad,) = torch.autograd.grad(log_p.sum(), x)
        return grad

    def denoise(self, x: Tensor, labels: Tensor | None = None, guidance: float = 0.0) -> Tensor:
        """One Tweedie step ``x̂ = x + σ² ∇ₓ log p_σ(x)`` in the flow's space (``x = y − ½``, so
        the step is the same in pixel units); the posterior mean of the clean image given a
        noisy one under the model's noisy density. Costs one backward pass."""
        sigma = self.noise_sigma
        if not sigma:
            raise ValueError("this model was not trained with Gaussian noise: nothing to denoise")
        return x + sigma**2 * self.score(x, labels, guidance).to(x.dtype)
