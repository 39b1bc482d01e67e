"""Optimizer construction shared by the Lightning module and the benchmarks (no Lightning import)."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def make_adam(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0, fused: bool = True
) -> torch.optim.Adam:
    """Adam with the fused (one-kernel) update, or the multi-tensor one: ~6× (fused) or ~2×
    (``fused=False``: ``foreach``) less optimizer time than the per-tensor loop on CPU, the
    same arithmetic."""
    return torch.optim.Adam(
        params, lr=lr, weight_decay=weight_decay, fused=fused, foreach=not fused
    )
