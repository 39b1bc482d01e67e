"""Tiny real-data training for the module, callback and CLI tests: a few batches of Fashion-MNIST,
a tiny Glow wrapped in a :class:`~glowapp.GlowModule`, and parameter snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from glowapp import GlowModule
from glowapp.data import FashionMNISTDataModule
from glowapp.models import Glow


def fashion_data(root: Path, **overrides: Any) -> FashionMNISTDataModule:
    """Real Fashion-MNIST from ``root`` (the ``fashion_root`` fixture): 128 training images in
    batches of 32 (4 steps per epoch), 64 validation and 64 test images; never downloads."""
    options: dict[str, Any] = {
        "root": str(root),
        "batch_size": 32,
        "train_limit": 128,
        "val_limit": 64,
        "test_limit": 64,
        "download": False,
    }
    return FashionMNISTDataModule(**(options | overrides))


def tiny_module(**options: Any) -> GlowModule:
    """A 2-level × 2-step, width-16 Glow for 1×28×28 images with a 2-step warm-up.

    ``options`` go to :class:`~glowapp.models.Glow` when they are its arguments (``coupling``,
    ``num_classes``…), to :class:`~glowapp.GlowModule` otherwise (``lr``, ``lr_schedule``…).
    """
    flow_names = ("levels", "steps", "hidden", "coupling", "permutation", "num_classes")
    flow_options = {k: options.pop(k) for k in flow_names if k in options}
    flow = Glow(
        in_channels=1, image_size=28, **({"levels": 2, "steps": 2, "hidden": 16} | flow_options)
    )
    return GlowModule(flow, **({"warmup_steps": 2} | options))


def flat_params(module: torch.nn.Module) -> Tensor:
    """Every parameter of ``module``, flattened and concatenated ``[P]``."""
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def fixed_batch(module: GlowModule, n: int = 8) -> Tensor:
    """``n`` uint8 images ``[n, *module.image_shape]`` drawn from a fixed seed."""
    generator = torch.Generator().manual_seed(123)
    return torch.randint(0, 256, (n, *module.image_shape), dtype=torch.uint8, generator=generator)
