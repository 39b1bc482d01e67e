"""The sampling options every command that decodes samples shares: ``--guidance`` and
``--denoise/--no-denoise`` (defaults: the model's own, stored in its checkpoint)."""

from __future__ import annotations

import argparse

from glowapp.image_flow import ImageFlow


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """``--guidance W`` and ``--denoise/--no-denoise``."""
    add_guidance_argument(parser)
    add_denoise_argument(parser)


def add_guidance_argument(parser: argparse.ArgumentParser) -> None:
    """``--guidance W`` (default: the model's own)."""
    parser.add_argument(
        "--guidance",
        type=float,
        default=None,
        metavar="W",
        help="classifier-free guidance weight of a class-conditional model trained with label "
        "dropout: (1 + W)·conditional − W·unconditional in every layer; 0 = plain conditional "
        "sampling (default: the model's own setting)",
    )


def add_denoise_argument(parser: argparse.ArgumentParser) -> None:
    """``--denoise/--no-denoise`` (default: the model's own)."""
    parser.add_argument(
        "--denoise",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one Tweedie denoising step with the model's own score (models trained with "
        "Gaussian noise; default: on for them, off otherwise)",
    )


def describe_sampling(model: ImageFlow, guidance: float | None, denoise: bool | None) -> str:
    """What the samples were made with, e.g. ``"guidance 2, denoised"`` (``""`` when neither
    applies)."""
    options = model.sampling_options(None, guidance, denoise)
    parts = []
    if model.can_guide:
        parts.append(f"guidance {options.guidance:g}")
    if model.dequantization.noisy:
        parts.append("denoised" if options.denoise else "not denoised")
    return ", ".join(parts)
