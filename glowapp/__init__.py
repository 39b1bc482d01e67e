"""glowapp: exact-likelihood image generation with Glow, RealNVP and NICE on PyTorch Lightning."""

__version__ = "0.1.0"
