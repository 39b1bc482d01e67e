"""glowapp: exact-likelihood image generation with Glow, RealNVP, NICE and TarFlow flows.

``glowapp.load(name_or_path)`` returns a trained model as an :class:`ImageFlow` (a plain
``torch.nn.Module``: ``sample``, ``log_prob``, ``bits_per_dim``, ``encode``, ``decode``) without
importing Lightning; :class:`GlowModule` is the LightningModule that trains one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["GlowModule", "ImageFlow", "load"]

if TYPE_CHECKING:
    from glowapp.image_flow import ImageFlow
    from glowapp.loading import load
    from glowapp.module import GlowModule


def __getattr__(name: str) -> Any:
    # Lazy, so `import glowapp` (and `glowapp.flows`) stays light, and only GlowModule pulls in
    # Lightning.
    if name == "load":
        from glowapp.loading import load

        return load
    if name == "ImageFlow":
        from glowapp.image_flow import ImageFlow

        return ImageFlow
    if name == "GlowModule":
        from glowapp.module import GlowModule

        return GlowModule
    raise AttributeError(f"module 'glowapp' has no attribute {name!r}")
