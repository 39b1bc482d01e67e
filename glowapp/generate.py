"""Generation with a trained flow: sampling, interpolation, inpainting, scoring, image grids.

This module holds the one implementation of each operation; the training callbacks
(:mod:`glowapp.callbacks`), the command-line tools (:mod:`glowapp.tools`), the notebook and the
web demo all call it.

Conventions: images are ``[B, C, H, W]`` tensors, uint8 ``0..255`` or float in ``[0, 1]`` on
input and float in ``[0, 1]`` (quantised to the model's ``n_bits``) on output. Latents are the
flow's *standardised* ``[ε_1, …, ε_L]`` (finest level first), so sampling at temperature ``T``
is ``decode(T · ε)`` with ``ε ~ N(0, I)``. Every function puts the module in eval mode for the
duration of the call and restores its previous mode.
"""

from __future__ import annotations

import functools
import io
import math
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from glowapp.checkpointing import atomic_file
from glowapp.data.images import fit_image, open_image, pil_to_tensor, to_mode
from glowapp.flows.preprocess import bits_per_dim, to_images
from glowapp.module import GlowModule

__all__ = [
    "INTERPOLATION_MODES",
    "MASK_KINDS",
    "CheckpointError",
    "InpaintResult",
    "Temperature",
    "as_float_images",
    "class_labels",
    "draw_noise",
    "inpaint",
    "inpainting_rows",
    "interpolate",
    "load_module",
    "log_prob_to_bits_per_dim",
    "make_mask",
    "mask_from_image",
    "masked_view",
    "resolve_device",
    "resolve_mask",
    "sample_grid",
    "sample_with_noise",
    "save_png",
    "score",
    "tile",
    "write_atomically",
]

Temperature = float | Sequence[float]
"""One temperature for every level, or one per level (finest first)."""

INTERPOLATION_MODES = ("linear", "spherical")
"""Ways :func:`interpolate` mixes two latents."""

MASK_KINDS = ("center", "left", "right", "top", "bottom", "random")
"""Built-in inpainting masks (see :func:`make_mask`)."""

MASK_COLOR = (1.0, 0.0, 1.0)
"""RGB colour that marks hidden pixels in :func:`masked_view` (magenta)."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _in_eval_mode(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn(module, ...)`` with ``module`` in eval mode, restoring its mode afterwards."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        module = args[0]
        assert isinstance(module, torch.nn.Module)
        was_training = module.training
        module.eval()
        try:
            return fn(*args, **kwargs)
        finally:
            module.train(was_training)

    return wrapper


def as_float_images(images: Tensor) -> Tensor:
    """uint8 ``0..255`` or float ``[0, 1]`` images → float32 in ``[0, 1]`` (same shape)."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


# ---- checkpoints and devices ------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a glowapp checkpoint (one-line message)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device


def load_module(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> GlowModule:
    """Load a :class:`GlowModule` checkpoint onto ``device``, in eval mode.

    The file is read once and checked before the module is rebuilt; unpickling is restricted
    to tensors and plain data (``weights_only``), so a checkpoint cannot run code.

    Raises:
        CheckpointError: the file is missing, a directory, not a (complete) PyTorch checkpoint,
            not a glowapp checkpoint, or its weights do not fit the stored hyper-parameters.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as err:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint ({err.strerror or err})"
        ) from None
    # torch.save (and so Lightning) writes zip archives: tell garbage from truncated files first.
    if not data.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint file")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint (incomplete zip archive)")
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for bad input (pickle, zip, EOF...)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: unreadable checkpoint: {reason}") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or "arch" not in hparams or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path}: not a glowapp checkpoint (no GlowModule hyper-parameters and weights); "
            "pass a .ckpt written by `glowapp fit`"
        )
    try:
        module = GlowModule.load_from_checkpoint(
            io.BytesIO(data), map_location=torch.device(device), weights_only=True
        )
    except (RuntimeError, TypeError, ValueError, KeyError) as err:
        reason = str(err).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: checkpoint does not fit glowapp's GlowModule: {reason}"
        ) from None
    return module.to(device).eval()


# ---- sampling ---------------------------------------------------------------------------------


def _per_level(temperature: Temperature, levels: int) -> list[float]:
    if isinstance(temperature, int | float):
        return [float(temperature)] * levels
    temperatures = [float(t) for t in temperature]
    if len(temperatures) != levels:
        raise ValueError(f"expected one temperature per level ({levels}), got {len(temperatures)}")
    return temperatures


def draw_noise(module: GlowModule, n: int, seed: int = 0) -> list[Tensor]:
    """Standard-normal latents ``[ε_1, …, ε_L]`` for ``n`` samples, drawn on the CPU from ``seed``.

    The same seed gives the same noise on any device, and the same images as
    ``module.sample(n, T, torch.Generator().manual_seed(seed))``.
    """
    generator = torch.Generator().manual_seed(seed)
    return module.flow.sample_latents(n, 1.0, generator)


def class_labels(module: GlowModule, labels: Sequence[int] | None, n: int) -> Tensor | None:
    """The labels ``[n]`` of ``n`` samples: ``labels`` repeated cyclically (sample ``i`` gets
    ``labels[i % len(labels)]``).

    Without ``labels``: None for an unconditional model; every class in turn (``0, 1, …, K−1,
    0, …``) for a class-conditional one.

    Raises:
        ValueError: labels for an unconditional model, or a label outside ``0..K−1``.
    """
    num_classes = module.flow.num_classes
    if labels is None:
        return torch.arange(n) % num_classes if num_classes else None
    labels = list(labels)
    if not num_classes:
        raise ValueError(
            "this checkpoint is unconditional (trained with num_classes=0), so it cannot sample "
            "a class; leave out the label, or train with --model.num_classes"
        )
    if not labels:
        raise ValueError("the list of labels is empty; leave it out to cycle through every class")
    bad = [y for y in labels if not 0 <= y < num_classes]
    if bad:
        raise ValueError(
            f"label {bad[0]} is out of range: this model has {num_classes} classes, "
            f"0..{num_classes - 1}"
        )
    return torch.tensor(labels)[torch.arange(n) % len(labels)]


@_in_eval_mode
@torch.no_grad()
def sample_with_noise(
    module: GlowModule,
    noise: Sequence[Tensor],
    temperatures: Sequence[Temperature],
    labels: Tensor | None = None,
) -> Tensor:
    """Decode fixed noise at each temperature: ``[len(temperatures), n, C, H, W]`` in ``[0, 1]``.

    Each temperature is a float (every prior's std scaled by it) or one float per level; the
    same ``ε`` is used for every temperature, so rows differ only by temperature. ``labels``
    ``[n]``: the classes of a class-conditional model's samples (see :func:`class_labels`).
    """
    device = module.device
    rows = []
    for temperature in temperatures:
        scales = _per_level(temperature, len(noise))
        latents = [t * eps.to(device) for t, eps in zip(scales, noise, strict=True)]
        rows.append(module.decode(latents, labels))
    return torch.stack(rows)


def sample_grid(
    module: GlowModule,
    temperatures: Sequence[Temperature],
    n: int,
    seed: int = 0,
    labels: Sequence[int] | None = None,
) -> Tensor:
    """``n`` samples at each temperature from one fixed noise draw: ``[T, n, C, H, W]``.

    See :func:`draw_noise` and :func:`sample_with_noise`; :func:`tile` turns it into one image
    with a row block per temperature. ``labels``: classes of a class-conditional model, repeated
    cyclically over the ``n`` samples (default: every class in turn; see :func:`class_labels`).
    """
    noise = draw_noise(module, n, seed)
    return sample_with_noise(module, noise, temperatures, class_labels(module, labels, n))


# ---- interpolation ----------------------------------------------------------------------------


def _mix(a: Tensor, b: Tensor, t: Tensor, mode: str) -> Tensor:
    """Interpolate rows of ``a, b`` ``[P, D]`` at weights ``t`` ``[S]`` → ``[P, S, D]``.

    ``linear``: ``(1 − t) a + t b``. ``spherical`` (slerp): with ``ω`` the angle between ``a``
    and ``b``, ``sin((1 − t) ω)/sin ω · a + sin(t ω)/sin ω · b`` (linear where ``ω ≈ 0``).
    Both give exactly ``a`` at ``t = 0`` and ``b`` at ``t = 1``.
    """
    t = t.to(a)[None, :, None]
    linear = (1 - t) * a[:, None] + t * b[:, None]
    if mode == "linear":
        return linear
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1.0, 1.0)
    omega = torch.acos(cos)[:, None, None]
    sin_omega = torch.sin(omega)
    degenerate = sin_omega.abs() < 1e-6
    safe = torch.where(degenerate, torch.ones_like(sin_omega), sin_omega)
    spherical = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / safe
    return torch.where(degenerate, linear, spherical)


@_in_eval_mode
@torch.no_grad()
def interpolate(
    module: GlowModule, images_a: Tensor, images_b: Tensor, steps: int = 8, mode: str = "linear"
) -> Tensor:
    """Images along the latent path from each ``images_a[i]`` to ``images_b[i]``.

    Both batches ``[P, C, H, W]`` are encoded at their bin centres; every level's latent is
    interpolated on its flattened vector (``linear`` or ``spherical``), and the path decoded.
    Returns ``[P, steps, C, H, W]`` in ``[0, 1]``; the first and last columns are the decoded
    endpoints, which reproduce the inputs exactly up to the model's quantisation.

    Class-conditional models: every image is encoded and decoded with the same label (class 0).
    Only the top latent depends on it, as ``ε_L = (h_L − μ(y)) / σ(y)`` of the label-free top
    activation ``h_L``, so the endpoints are exact and a linear path in ``ε_L`` is the linear
    path in ``h_L`` whichever label is used.
    """
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (the two endpoints), got {steps}")
    if images_a.shape != images_b.shape:
        raise ValueError(
            f"image batches differ in shape: {tuple(images_a.shape)} vs {tuple(images_b.shape)}"
        )
    t = torch.linspace(0.0, 1.0, steps)
    n = images_a.shape[0]
    same_label = torch.zeros(n, dtype=torch.long) if module.flow.num_classes else None
    latents = []
    ends = (module.encode(images_a, labels=same_label), module.encode(images_b, labels=same_label))
    for za, zb in zip(*ends, strict=True):
        mixed = _mix(za.flatten(1), zb.flatten(1), t, mode)  # [P, S, D]
        latents.append(mixed.reshape(-1, *za.shape[1:]))
    path_labels = None if same_label is None else same_label.repeat_interleave(steps)
    images = module.decode(latents, path_labels)
    return images.reshape(-1, steps, *images.shape[1:])


# ---- inpainting -------------------------------------------------------------------------------


def make_mask(
    kind: str, size: tuple[int, int], fraction: float | None = None, seed: int = 0
) -> Tensor:
    """A bool mask ``[H, W]`` for ``size = (H, W)``: ``True`` marks a hidden pixel.

    ``kind``: ``center`` (a centred box covering ``fraction`` of the area, default ¼: half the
    height and width), ``left``/``right``/``top``/``bottom`` (that ``fraction`` of the columns or
    rows, default ½), ``random`` (each pixel hidden with probability ``fraction``, default ½,
    drawn from ``seed``).
    """
    height, width = size
    if kind not in MASK_KINDS:
        raise ValueError(
            f"mask must be one of {', '.join(MASK_KINDS)} or an image file, got {kind!r}"
        )
    if fraction is None:
        fraction = 0.25 if kind == "center" else 0.5
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"mask fraction must be in (0, 1], got {fraction}")
    mask = torch.zeros(height, width, dtype=torch.bool)
    rows, cols = round(height * fraction), round(width * fraction)
    if kind == "center":
        side = math.sqrt(fraction)
        h, w = round(height * side), round(width * side)
        top, left = (height - h) // 2, (width - w) // 2
        mask[top : top + h, left : left + w] = True
    elif kind == "left":
        mask[:, :cols] = True
    elif kind == "right":
        mask[:, width - cols :] = True
    elif kind == "top":
        mask[:rows] = True
    elif kind == "bottom":
        mask[height - rows :] = True
    else:
        generator = torch.Generator().manual_seed(seed)
        mask = torch.rand(height, width, generator=generator) < fraction
    return mask


def mask_from_image(path: str | os.PathLike[str], size: tuple[int, int]) -> Tensor:
    """A mask image (white = hidden) as a bool ``[H, W]`` mask, resized/cropped like the images.

    Raises :class:`glowapp.data.ImageLoadError` for unreadable files.
    """
    return pil_to_tensor(fit_image(to_mode(open_image(path), "L"), size))[0] >= 128


def resolve_mask(
    spec: str, size: tuple[int, int], fraction: float | None = None, seed: int = 0
) -> Tensor:
    """:func:`make_mask` for a name in :data:`MASK_KINDS`, else the mask image at path ``spec``."""
    if spec in MASK_KINDS:
        return make_mask(spec, size, fraction, seed)
    return mask_from_image(spec, size)


@dataclass
class InpaintResult:
    """What :func:`inpaint` returns."""

    images: Tensor
    """Completed images ``[B, C, H, W]`` in ``[0, 1]``; observed pixels equal the input's."""
    initial: Tensor
    """The noise initialisation as images ``[B, C, H, W]`` (observed pixels already in place)."""
    log_prob: Tensor
    """``log p_Y(y)`` in nats, ``[iterations + 1, B]``: before each step, then of the result."""


@_in_eval_mode
def inpaint(
    module: GlowModule,
    images: Tensor,
    mask: Tensor,
    iterations: int = 500,
    step_size: float = 1e-3,
    decay_steps: float = 100.0,
    noise_scale: float = 0.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> InpaintResult:
    """Fill hidden pixels by projected gradient ascent on ``log p_Y`` (NICE, Dinh et al. 2014 §5.2).

    Works in ``y`` space, the dequantised ``[0, 1)`` images on which the model's density
    :meth:`GlowModule.log_prob_y` is defined (it includes the logit/shift preprocessing).
    Observed pixels are fixed at their bin centres; hidden pixels start as uniform noise in
    ``[0, 1)`` and are updated ``iterations`` times by

    ``y_H ← clamp(y_H + α_k ∇_{y_H} log p_Y(y) + σ_k ξ, ε, 1 − ε)``, ``ξ ~ N(0, I)``,

    with the step decaying as ``α_k = step_size / (1 + k / decay_steps)`` (NICE used
    ``0.1 / (1 + k/100)``; the default suits Glow's ``y − ½`` preprocessing, whose gradients are
    larger) and Langevin-like noise ``σ_k = noise_scale · (1 − k / iterations)`` annealed to 0
    (``y`` units; 0 = plain gradient ascent). ``ε = 10⁻⁴`` keeps ``y`` inside ``(0, 1)``.

    Only ``y`` gets gradients (``torch.autograd.grad``; parameter ``.grad`` are untouched), and
    grad mode is switched on inside, so this works under ``torch.no_grad``.

    Args:
        module: the trained model.
        images: ``[B, C, H, W]`` uint8 or ``[0, 1]`` float; hidden pixels' values are ignored.
        mask: bool, ``True`` = hidden, broadcastable to ``images`` (e.g. ``[H, W]`` from
            :func:`make_mask`, or ``[B, 1, H, W]``).
        iterations: number of gradient steps.
        step_size: ``α_0``, in ``y`` units per nat of gradient.
        decay_steps: ``τ`` of the step decay (in steps).
        noise_scale: initial std of the added Gaussian noise (``y`` units).
        seed: seeds the uniform initialisation and the noise (CPU generator: device-independent).
        progress: called with the iteration number ``k`` after each step (e.g. a progress bar).
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if images.ndim != 4 or tuple(images.shape[1:]) != module.image_shape:
        raise ValueError(
            f"expected images [B, {', '.join(map(str, module.image_shape))}], "
            f"got {tuple(images.shape)}"
        )
    device = module.device
    images = images.to(device)
    hidden = torch.broadcast_to(mask.to(device=device, dtype=torch.bool), images.shape)
    observed = module.preprocess.dequantize(images, noise=False)
    generator = torch.Generator().manual_seed(seed)
    start = torch.rand(images.shape, generator=generator).to(device)
    eps = 1e-4
    y = torch.where(hidden, start, observed).clamp(eps, 1 - eps)
    initial = y.clone()
    history = []
    with torch.enable_grad():
        for k in range(iterations):
            y.requires_grad_(True)
            log_p = module.log_prob_y(y)
            (grad,) = torch.autograd.grad(log_p.sum(), y)
            history.append(log_p.detach())
            alpha = step_size / (1.0 + k / decay_steps)
            step = alpha * torch.nan_to_num(grad)
            if noise_scale > 0:
                sigma = noise_scale * (1.0 - k / iterations)
                step = step + sigma * torch.randn(y.shape, generator=generator).to(device)
            y = torch.where(hidden, y.detach() + step, observed).clamp(eps, 1 - eps)
            if progress is not None:
                progress(k + 1)
    with torch.no_grad():
        history.append(module.log_prob_y(y))
    n_bits = module.preprocess.n_bits
    return InpaintResult(to_images(y, n_bits), to_images(initial, n_bits), torch.stack(history))


def masked_view(images: Tensor, mask: Tensor) -> Tensor:
    """RGB copies ``[B, 3, H, W]`` of ``images`` with hidden pixels painted :data:`MASK_COLOR`."""
    rgb = _to_rgb(as_float_images(images))
    hidden = torch.broadcast_to(mask.to(rgb.device, torch.bool), rgb.shape[:1] + rgb.shape[2:])
    color = torch.tensor(MASK_COLOR, device=rgb.device)[None, :, None, None].expand_as(rgb)
    return torch.where(hidden[:, None], color, rgb)


def inpainting_rows(images: Tensor, mask: Tensor, result: InpaintResult) -> list[Tensor]:
    """The three row blocks of an inpainting figure: masked input, completion, ground truth."""
    images = as_float_images(images).to(result.images.device)
    mask = mask.to(result.images.device)
    # A per-channel mask shows as hidden wherever any channel is hidden.
    pixel_mask = torch.broadcast_to(mask, images.shape).any(dim=1)
    return [masked_view(images, pixel_mask), result.images, images]


# ---- scoring ----------------------------------------------------------------------------------


@_in_eval_mode
@torch.no_grad()
def score(module: GlowModule, images: Tensor, noise_samples: int = 0, seed: int = 0) -> Tensor:
    """Bits/dim ``[B]`` of images (the discrete negative log-likelihood per sub-pixel).

    ``noise_samples=0`` (default) evaluates at the bin centres: deterministic, and what ranks
    single images. ``noise_samples=K > 0`` averages the papers' uniformly dequantised estimate
    over ``K`` draws from ``seed`` (each draw an upper bound on the discrete bits/dim).
    """
    if noise_samples == 0:
        return module.bits_per_dim(images, noise=False)
    generator = torch.Generator(device=module.device).manual_seed(seed)
    draws = [
        module.bits_per_dim(images, noise=True, generator=generator) for _ in range(noise_samples)
    ]
    return torch.stack(draws).mean(dim=0)


def log_prob_to_bits_per_dim(module: GlowModule, log_prob: Tensor) -> Tensor:
    """Turn ``log p_Y(y)`` (nats, e.g. :attr:`InpaintResult.log_prob`) into bits/dim."""
    return bits_per_dim(
        log_prob, torch.zeros_like(log_prob), module.num_dims, module.preprocess.n_bits
    )


# ---- image grids and files --------------------------------------------------------------------


def _to_rgb(images: Tensor) -> Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def tile(blocks: Sequence[Tensor], ncol: int, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """One RGB image ``[3, H', W']`` of row blocks of images.

    Each block ``[k, C, H, W]`` (uint8 or ``[0, 1]``; 1 or 3 channels) is laid out ``ncol`` per
    row and padded with blank cells to whole rows, so every block starts on a new row. A
    ``[R, k, C, H, W]`` tensor (e.g. from :func:`sample_grid` or :func:`interpolate`) gives ``R``
    blocks. Size: ``W' = ncol·(W + padding) + padding``, ``H' = rows·(H + padding) + padding``.
    """
    if ncol < 1:
        raise ValueError(f"ncol must be positive, got {ncol}")
    cells = []
    for block in blocks:
        block = _to_rgb(as_float_images(block).cpu())
        blank = (-len(block)) % ncol
        cells += [block, torch.full((blank, *block.shape[1:]), pad_value)]
    return make_grid(torch.cat(cells), nrow=ncol, padding=padding, pad_value=pad_value)


def write_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`glowapp.checkpointing.atomic_file`: readers
    never see a half-written file. Parent folders are created. Returns ``path``."""
    path = Path(path)
    try:
        with atomic_file(path) as f:
            f.write(data)
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err
    return path


def save_png(grid: Tensor, path: str | os.PathLike[str]) -> Path:
    """Save one image ``[C, H, W]`` in ``[0, 1]`` (e.g. from :func:`tile`) as a PNG, atomically."""
    buffer = io.BytesIO()
    save_image(grid, buffer, format="png")
    return write_atomically(path, buffer.getvalue())
