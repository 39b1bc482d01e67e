"""``glowapp.load``: a trained model as an :class:`~glowapp.ImageFlow`, by name or path, without
Lightning."""

from __future__ import annotations

import os
from typing import Any

import torch

from glowapp.checkpointing import (
    CheckpointError,
    describe_state_mismatch,
    first_line,
    read_checkpoint,
    upgrade_hparams,
)
from glowapp.devices import resolve_device
from glowapp.image_flow import ImageFlow
from glowapp.pretrained import resolve_checkpoint

__all__ = ["image_flow_from_checkpoint", "load"]


def image_flow_from_checkpoint(
    checkpoint: dict[str, Any], path: os.PathLike[str] | str
) -> ImageFlow:
    """The :class:`ImageFlow` a loaded checkpoint dictionary describes, with its weights (CPU).

    Raises:
        CheckpointError: the stored model cannot be built, or the weights do not fit it.
    """
    hparams = upgrade_hparams(checkpoint["hyper_parameters"])
    try:
        model = ImageFlow(
            hparams["flow"],
            hparams.get("preprocessing") or {},
            hparams.get("dequantization") or {},
            hparams.get("sampling") or {},
            bool(hparams.get("unconditional", False)),
        )
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"cannot build the stored model: {first_line(err)}", path) from None
    state = dict(checkpoint["state_dict"])
    state.pop("skipped_steps", None)  # a counter of glowapp < 0.2, now a callback's
    mismatch = describe_state_mismatch(model.state_dict(), state)
    if mismatch:
        raise CheckpointError(f"checkpoint does not fit its stored model: {mismatch}", path)
    model.load_state_dict(state)
    if hparams.get("channels_last", True):
        model.flow.use_channels_last(True)
    return model


def load(name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu") -> ImageFlow:
    """A trained model, ready for :meth:`~ImageFlow.sample`, scoring and editing, in eval mode.

    ``name_or_path``: a shipped model's name (``"fashion-mnist"``, ``"fashion-mnist-conditional"``;
    :data:`glowapp.pretrained.SHIPPED`) or a ``.ckpt`` written by ``glowapp fit`` (or
    ``scripts/ship_checkpoint.py``). ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or
    ``"auto"``. Lightning is not imported; unpickling is restricted to tensors and plain data, so
    a checkpoint cannot run code.

    Raises:
        CheckpointError: no such file or shipped model, not a glowapp checkpoint, or its weights
            do not fit its model.
        ValueError: an unknown device.
    """
    target = resolve_device(device)
    path = resolve_checkpoint(name_or_path)
    _, checkpoint = read_checkpoint(path)
    return image_flow_from_checkpoint(checkpoint, path).to(target).eval()
