"""Generation with a trained flow: sampling, interpolation, inpainting, scoring and semantic
manipulation — math only.

One implementation of each operation, a module each (:mod:`~glowapp.generate.sampling`,
:mod:`~glowapp.generate.interpolation`, :mod:`~glowapp.generate.inpainting`,
:mod:`~glowapp.generate.scoring`, :mod:`~glowapp.generate.manipulation`), and the one check of
each of its arguments: a ``ValueError`` naming the value and what is allowed. The training
callbacks (:mod:`glowapp.callbacks`), the command-line tools (:mod:`glowapp.tools`), the
notebook and the web demo all call these functions and let their errors through. Nothing here
reads or writes files: models come from :func:`glowapp.load`, images, grids and PNGs from
:mod:`glowapp.images`, masks from :mod:`glowapp.masks`.

Conventions: every function takes the model as its first argument — an
:class:`~glowapp.ImageFlow` (or a :class:`~glowapp.GlowModule`, which offers the same methods).
Images are ``[B, C, H, W]`` tensors, uint8 ``0..255`` or float in ``[0, 1]`` on input and float
in ``[0, 1]`` (quantised to the model's ``n_bits``) on output. Latents are the flow's
*standardised* ``[ε_1, …, ε_L]`` (finest level first), so sampling at temperature ``T`` is
``decode(T · ε)`` with ``ε ~ N(0, I)``. Every function puts the model in eval mode for the
duration of the call and restores its previous mode. Random draws come from CPU generators
seeded by ``seed``, so the same seed gives the same images on any device.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch

from glowapp.generate.inpainting import InpaintResult, inpaint
from glowapp.generate.interpolation import INTERPOLATION_MODES, interpolate, mix_latents
from glowapp.generate.manipulation import (
    Direction,
    class_direction,
    latent_direction,
    manipulate,
)
from glowapp.generate.sampling import (
    Temperature,
    class_labels,
    draw_noise,
    sample_grid,
    sample_with_noise,
)
from glowapp.generate.scoring import log_prob_to_bits_per_dim, score
from glowapp.masks import MASK_KINDS, make_mask

if TYPE_CHECKING:
    from glowapp.module import GlowModule

__all__ = [
    "INTERPOLATION_MODES",
    "MASK_KINDS",
    "Direction",
    "InpaintResult",
    "Temperature",
    "class_direction",
    "class_labels",
    "draw_noise",
    "inpaint",
    "interpolate",
    "latent_direction",
    "load_module",
    "log_prob_to_bits_per_dim",
    "make_mask",
    "manipulate",
    "mix_latents",
    "sample_grid",
    "sample_with_noise",
    "score",
]


def load_module(
    name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> GlowModule:
    """A checkpoint (a path or a shipped model's name) as a :class:`~glowapp.GlowModule`, in eval
    mode — kept for code written before :func:`glowapp.load`, which returns the lighter
    :class:`~glowapp.ImageFlow` and does not import Lightning (this does)."""
    from glowapp.module import load_module as load_lightning_module

    return load_lightning_module(name_or_path, device)
