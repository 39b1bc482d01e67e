"""Direction files: :class:`~glowapp.generate.Direction` saved to disk and read back, checked
against the model that reads them (``glowapp manipulate --save-direction / --direction``)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from glowapp.atomic import write_atomically
from glowapp.generate import Direction
from glowapp.image_flow import ImageFlow

__all__ = ["load_direction", "save_direction"]

_FORMAT = "glowapp-direction/1"
"""The ``format`` entry of a saved direction file."""


def save_direction(direction: Direction, path: str | os.PathLike[str]) -> Path:
    """Write ``direction`` to ``path`` atomically, as a weights-only ``torch.save`` file holding
    the latents (whose shapes are the model's latent shapes) and the model's flow spec.
    Returns ``path``."""
    state = {
        "format": _FORMAT,
        "flow": direction.flow,
        "latents": [d.cpu().contiguous() for d in direction.latents],
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_atomically(path, buffer.getvalue())


def load_direction(path: str | os.PathLike[str], model: ImageFlow) -> Direction:
    """The direction saved at ``path`` by :func:`save_direction`, checked against ``model``.

    Unpickling is restricted to tensors and plain data (``weights_only=True``).

    Raises:
        ValueError: the file is missing, unreadable or not a direction file, or the direction
            was computed with another model.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such direction file") from None
    except Exception as err:  # torch.load raises many types for bad input (pickle, zip, EOF...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a direction file saved by glowapp ({first})") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a direction file saved by glowapp (no {_FORMAT!r} format)")
    direction = Direction(list(state["latents"]), dict(state["flow"]))
    direction.check_fits(model, str(path))
    return direction
