"""Small untrained models, their checkpoint files, and the errors the generation tests expect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from glowapp import GlowModule
from glowapp.models import Glow


def tiny_glow(side: int = 28, seed: int = 0, **options: Any) -> GlowModule:
    """An untrained one-channel Glow (2 levels × 2 steps, width 16) for ``side``² images.

    ``options`` go to :class:`~glowapp.models.Glow` (e.g. ``num_classes=3``).
    """
    torch.manual_seed(seed)
    flow = Glow(in_channels=1, image_size=side, levels=2, steps=2, hidden=16, **options)
    return GlowModule(flow)


def write_checkpoint(
    module: GlowModule, path: Path, hyper_parameters: dict[str, Any] | None = None
) -> Path:
    """Save ``module`` as ``Trainer.save_checkpoint`` would, as far as loading needs.

    ``hyper_parameters`` replaces the module's own (e.g. an old-format dictionary).
    """
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams) if hyper_parameters is None else hyper_parameters,
        "pytorch-lightning_version": pl.__version__,
    }
    torch.save(checkpoint, path)
    return path


def error_message(fn: Any, *args: Any, **kwargs: Any) -> str:
    """The message of the ``ValueError`` that ``fn(*args, **kwargs)`` raises (fails if none)."""
    try:
        fn(*args, **kwargs)
    except ValueError as err:
        return str(err)
    raise AssertionError(f"{fn.__name__}{args} raised no ValueError")
