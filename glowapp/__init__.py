"""glowapp: exact-likelihood image generation with Glow, RealNVP and NICE on PyTorch Lightning."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["GlowModule"]

if TYPE_CHECKING:
    from glowapp.module import GlowModule


def __getattr__(name: str) -> Any:
    # Lazy, so `import glowapp.flows` does not pull in Lightning.
    if name == "GlowModule":
        from glowapp.module import GlowModule

        return GlowModule
    raise AttributeError(f"module 'glowapp' has no attribute {name!r}")
