"""What every generation function shares: eval mode for the call, seeded CPU generators."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch
from torch import Tensor

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


def shared_label(model: torch.nn.Module, n: int) -> Tensor | None:
    """The one label that images are encoded and decoded with when their class does not matter
    (interpolation, manipulation): ``[n]`` copies of "no label" for a model trained with label
    dropout (its unconditional branch), of class 0 for other class-conditional models, or None
    for unconditional ones. Encoding and decoding with the same label keeps the round trip
    exact whichever label it is."""
    if not model.num_classes:  # unconditional, or used as such (then "no label" is implied)
        return None
    null = getattr(model.flow, "null_label", None)
    return torch.full((n,), 0 if null is None else null, dtype=torch.long)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (any integer torch accepts)."""
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [-2**63, 2**64), got {seed}")
    return torch.Generator(device=device).manual_seed(seed)
