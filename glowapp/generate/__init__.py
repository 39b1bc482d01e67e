"""Generation with a trained flow: sampling, interpolation, inpainting, masks, scoring and
semantic manipulation.

One implementation of each operation, a module each (:mod:`~glowapp.generate.sampling`,
:mod:`~glowapp.generate.interpolation`, :mod:`~glowapp.generate.masks`,
:mod:`~glowapp.generate.inpainting`, :mod:`~glowapp.generate.scoring`,
:mod:`~glowapp.generate.manipulation`), and the one check of
each of its arguments: a ``ValueError`` naming the value and what is allowed. The training
callbacks (:mod:`glowapp.callbacks`), the command-line tools (:mod:`glowapp.tools`), the
notebook and the web demo all call these functions and let their errors through. It reads and writes
no files but saved manipulation directions: checkpoints are
:mod:`glowapp.checkpointing`'s and images, grids and PNGs :mod:`glowapp.images`' (both
re-exported here, so ``glowapp.generate.load_module`` and ``glowapp.generate.tile`` keep working).

Conventions: images are ``[B, C, H, W]`` tensors, uint8 ``0..255`` or float in ``[0, 1]`` on
input and float in ``[0, 1]`` (quantised to the model's ``n_bits``) on output. Latents are the
flow's *standardised* ``[ε_1, …, ε_L]`` (finest level first), so sampling at temperature ``T``
is ``decode(T · ε)`` with ``ε ~ N(0, I)``. Every function puts the module in eval mode for the
duration of the call and restores its previous mode. Random draws come from CPU generators
seeded by ``seed``, so the same seed gives the same images on any device.
"""

from glowapp.checkpointing import CheckpointError, load_module, resolve_device
from glowapp.generate.inpainting import InpaintResult, inpaint
from glowapp.generate.interpolation import INTERPOLATION_MODES, interpolate
from glowapp.generate.manipulation import (
    Direction,
    class_direction,
    latent_direction,
    load_direction,
    manipulate,
    save_direction,
)
from glowapp.generate.masks import MASK_KINDS, make_mask, resolve_mask
from glowapp.generate.sampling import (
    Temperature,
    class_labels,
    draw_noise,
    sample_grid,
    sample_with_noise,
)
from glowapp.generate.scoring import log_prob_to_bits_per_dim, score
from glowapp.images import (
    as_float_images,
    inpainting_rows,
    mask_from_image,
    masked_view,
    save_png,
    tile,
    write_atomically,
)

__all__ = [
    "INTERPOLATION_MODES",
    "MASK_KINDS",
    "CheckpointError",
    "Direction",
    "InpaintResult",
    "Temperature",
    "as_float_images",
    "class_direction",
    "class_labels",
    "draw_noise",
    "inpaint",
    "inpainting_rows",
    "interpolate",
    "latent_direction",
    "load_direction",
    "load_module",
    "log_prob_to_bits_per_dim",
    "make_mask",
    "manipulate",
    "mask_from_image",
    "masked_view",
    "resolve_device",
    "resolve_mask",
    "sample_grid",
    "sample_with_noise",
    "save_direction",
    "save_png",
    "score",
    "tile",
    "write_atomically",
]
