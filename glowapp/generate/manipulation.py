"""Semantic manipulation (Kingma & Dhariwal 2018, §5): move images along a latent direction.

The direction between two groups of images is the difference of their mean latents, on every
level: ``d_l = mean_{x ∈ P} ε_l(x) − mean_{x ∈ N} ε_l(x)`` for the positive set ``P`` and the
negative set ``N``. An image ``x`` is moved to ``decode(ε(x) + α · d)``; at ``α = 0`` that is
``decode(encode(x))``, the input itself after quantisation. A :class:`Direction` remembers the
model it was computed with (its flow spec and latent shapes), so that a saved direction is
refused by any other model.

Class-conditional models: every image is encoded and decoded with the same label, as in
:func:`~glowapp.generate.interpolate` (:func:`~glowapp.generate.common.shared_label`: "no label"
for models trained with label dropout, else class 0), so ``α = 0`` still reproduces the input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from glowapp.checkpointing import flow_differences
from glowapp.generate.common import in_eval_mode, shared_label

if TYPE_CHECKING:
    from glowapp.image_flow import ImageFlow

__all__ = [
    "Direction",
    "class_direction",
    "latent_direction",
    "manipulate",
]


@dataclass(frozen=True)
class Direction:
    """A latent direction ``[d_1, …, d_L]`` (one ``[C_l, H_l, W_l]`` tensor per level, finest
    first, on the CPU) and the identity of the model it belongs to."""

    latents: list[Tensor]
    flow: dict[str, Any]
    """The model's flow spec (``model.flow_spec``: class path and arguments)."""

    @property
    def latent_shapes(self) -> list[tuple[int, ...]]:
        """``[(C_l, H_l, W_l)]`` of every level."""
        return [tuple(d.shape) for d in self.latents]

    def check_fits(self, model: ImageFlow, source: str = "the direction") -> None:
        """Raise a ``ValueError`` naming ``source`` unless this direction is ``model``'s.

        Checks the flow spec and the latent shapes: a direction of another architecture is
        refused; one of another training of the same architecture cannot be told apart.
        """
        shapes = [tuple(s) for s in model.flow.latent_shapes()]
        differing = flow_differences(model.flow_spec, self.flow)
        if differing or shapes != self.latent_shapes:
            what = ", ".join(differing) or f"latent shapes {self.latent_shapes} (model: {shapes})"
            raise ValueError(
                f"{source} was computed with another model ({what}); compute it for this "
                "checkpoint from its positive and negative images"
            )


def _check_images(model: ImageFlow, images: Tensor, what: str) -> None:
    """Raise unless ``images`` is a non-empty ``[B, C, H, W]`` batch of the model's shape."""
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(model.image_shape):
        shape = "x".join(map(str, model.image_shape))
        raise ValueError(
            f"the {what} must be [B, C, H, W] images of the model's {shape} (CxHxW) shape, got "
            f"{tuple(images.shape)}; load files with glowapp.images.load_image, which fits them"
        )
    if len(images) == 0:
        raise ValueError(f"the {what} is empty: give at least one image")


def _mean_latents(model: ImageFlow, images: Tensor, batch_size: int) -> list[Tensor]:
    """The mean ``[C_l, H_l, W_l]`` of every level's latent over ``images`` ``[B, C, H, W]``."""
    sums: list[Tensor] | None = None
    for batch in images.split(batch_size):
        latents = model.encode(batch, labels=shared_label(model, len(batch)))
        batch_sums = [z.double().sum(dim=0).cpu() for z in latents]
        sums = (
            batch_sums if sums is None else [a + b for a, b in zip(sums, batch_sums, strict=True)]
        )
    assert sums is not None
    return [s / len(images) for s in sums]


@in_eval_mode
@torch.no_grad()
def latent_direction(
    model: ImageFlow, positive: Tensor, negative: Tensor, batch_size: int = 256
) -> Direction:
    """The direction from the ``negative`` images to the ``positive`` ones (both
    ``[B, C, H, W]``, uint8 or ``[0, 1]``, any batch sizes): on every level ``l``,
    ``d_l = mean ε_l(positive) − mean ε_l(negative)``, latents at the bin centres, summed in
    float64, returned as float32.

    Raises:
        ValueError: an empty set, or images that are not the model's ``[B, C, H, W]``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    _check_images(model, positive, "positive set")
    _check_images(model, negative, "negative set")
    means = (_mean_latents(model, images, batch_size) for images in (positive, negative))
    latents = [(p - n).float() for p, n in zip(*means, strict=True)]
    return Direction(latents, dict(model.flow_spec))


def class_direction(
    model: ImageFlow,
    images: Tensor,
    labels: Tensor | None,
    positive_class: int,
    negative_class: int,
    batch_size: int = 256,
) -> Direction:
    """:func:`latent_direction` from the images ``[N, C, H, W]`` of a labelled data set whose
    label ``[N]`` is ``positive_class`` against those labelled ``negative_class``.

    Raises:
        ValueError: ``labels`` is None (a data set without classes, e.g. an image folder), the
            two classes are the same, or a class has no image.
    """
    if labels is None:
        raise ValueError(
            "this data set has no class labels (an image folder), so it cannot give a "
            "--positive-class/--negative-class direction; give --positive and --negative images"
        )
    if positive_class == negative_class:
        raise ValueError(f"the positive and negative classes are both {positive_class}")
    present = sorted(set(labels.tolist()))
    for name, k in (("positive", positive_class), ("negative", negative_class)):
        if k not in present:
            raise ValueError(
                f"the {name} class {k} has no image in this data set (its classes: "
                f"{present[0]}..{present[-1]})"
            )
    return latent_direction(
        model, images[labels == positive_class], images[labels == negative_class], batch_size
    )


@in_eval_mode
@torch.no_grad()
def manipulate(
    model: ImageFlow, images: Tensor, direction: Direction, alphas: Sequence[float]
) -> Tensor:
    """Each image moved by each ``α`` along ``direction``: ``decode(ε(x) + α · d)``.

    ``images`` ``[N, C, H, W]`` (uint8 or ``[0, 1]``) are encoded at their bin centres. Returns
    ``[N, A, C, H, W]`` in ``[0, 1]`` for ``A = len(alphas)``, quantised to the model's
    ``n_bits``; the column of ``α = 0`` is the input itself.

    Raises:
        ValueError: no ``α`` or a non-finite one, images that are not the model's, or a
            direction of another model.
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ValueError("give at least one alpha (the step along the direction)")
    bad = [a for a in alphas if not math.isfinite(a)]
    if bad:
        raise ValueError(f"alpha must be a finite number, got {bad[0]}")
    _check_images(model, images, "batch of images to manipulate")
    direction.check_fits(model)
    n, steps = len(images), len(alphas)
    latents = model.encode(images, labels=shared_label(model, n))
    a = torch.tensor(alphas, device=model.device)[None, :, None, None, None]  # [1, A, 1, 1, 1]
    moved = [
        (z[:, None] + a * d.to(z)).reshape(n * steps, *z.shape[1:])  # [N·A, C_l, H_l, W_l]
        for z, d in zip(latents, direction.latents, strict=True)
    ]
    decoded = model.decode(moved, shared_label(model, n * steps), guidance=0.0)
    return decoded.reshape(n, steps, *decoded.shape[1:])
