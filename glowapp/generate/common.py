"""What every generation function shares: eval mode for the call, seeded CPU generators."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

_P = ParamSpec("_P")
_R = TypeVar("_R")


def in_eval_mode(fn: Callable[_P, _R]) -> Callable[_P, _R]:
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


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (any integer torch accepts)."""
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [-2**63, 2**64), got {seed}")
    return torch.Generator(device=device).manual_seed(seed)
