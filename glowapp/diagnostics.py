"""Locating where non-finite values arise in a flow."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from glowapp.flows.base import Bijection
from glowapp.flows.split import Split


def _tensors(value: object) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


@torch.no_grad()
def first_nonfinite_layer(flow: nn.Module, x: Tensor, labels: Tensor | None = None) -> str | None:
    """Run ``flow.encode(x, labels)`` once and name the first bijection whose output or log-det is non-finite.

    Returns the layer's qualified name and type (e.g. ``"levels.1.layers.3.layers.2 (ChannelCoupling)"``),
    ``"input"`` if ``x`` itself is non-finite, or ``None`` if everything is finite.
    """
    if not torch.isfinite(x).all():
        return "input"
    found: list[str] = []
    names = {module: name for name, module in flow.named_modules()}

    def hook(module: nn.Module, _inputs: object, output: object) -> None:
        if not found and any(not torch.isfinite(t).all() for t in _tensors(output)):
            found.append(f"{names[module]} ({type(module).__name__})")

    handles = [
        m.register_forward_hook(hook)
        for m in flow.modules()
        if isinstance(m, Split)
        or (isinstance(m, Bijection) and not any(isinstance(c, Bijection) for c in m.children()))
    ]
    try:
        flow.encode(x, labels)
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None
