"""A bad value reaches the demo's page with glowapp.generate's own message, and the header
describes each architecture by its own arguments.

Each case calls a handler and the glowapp.generate function it reaches with the same value: the
two messages must be identical (a check repeated in the demo, worded differently, would fail),
and the page wrapper (:func:`glowapp.demo.app._shown`) must show that message as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
import torch
from helpers.demo_pages import upload
from helpers.generation import error_message

from glowapp import GlowModule
from glowapp.demo.app import _shown
from glowapp.demo.handlers import Demo
from glowapp.generate import inpaint, interpolate, make_mask, sample_grid
from glowapp.image_flow import ImageFlow
from glowapp.models import NICE, Glow, RealNVP

pytestmark = pytest.mark.usefixtures("single_thread")

IMAGES = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)

#: (the handler's name and form values, the glowapp.generate call with the same value).
#: An upload argument "example" is the first example photo.
CASES: dict[str, tuple[str, tuple[Any, ...], Callable[[ImageFlow], Any]]] = {
    "temperature": ("sample", (-0.5, 4, 0), lambda m: sample_grid(m, [-0.5], 4)),
    "temperature nan": (
        "sample",
        (float("nan"), 4, 0),
        lambda m: sample_grid(m, [float("nan")], 4),
    ),
    "number of images": ("sample", (0.7, 0, 0), lambda m: sample_grid(m, [0.7], 0)),
    "seed": ("sample", (0.7, 4, -(2**64)), lambda m: sample_grid(m, [0.7], 4, seed=-(2**64))),
    "steps": (
        "interpolate",
        ("example", "example", 1, "linear"),
        lambda m: interpolate(m, IMAGES, IMAGES, steps=1),
    ),
    "mode": (
        "interpolate",
        ("example", "example", 4, "cubic"),
        lambda m: interpolate(m, IMAGES, IMAGES, mode="cubic"),
    ),
    "iterations": (
        "inpaint",
        ("example", [], "center", -1),
        lambda m: inpaint(m, IMAGES, make_mask("center", (28, 28)), iterations=-1),
    ),
    "preset mask": (
        "inpaint",
        ("example", [], "drawn", 10),
        lambda m: make_mask("drawn", (28, 28)),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_functions_error_reaches_the_page_unchanged(
    case: str, demo: Demo, examples: list[Path]
) -> None:
    name, form, call = CASES[case]
    expected = error_message(call, demo.model)
    values = [upload(examples[0]) if value == "example" else value for value in form]
    handler = getattr(demo, name)
    with pytest.raises(ValueError) as info:
        handler(*values)
    assert str(info.value) == expected
    with pytest.raises(gr.Error) as shown:
        _shown(handler)(*values)
    assert shown.value.message == expected


@pytest.mark.parametrize(
    ("flow", "description"),
    [
        (
            NICE(in_channels=1, image_size=28, couplings=3, hidden=16),
            "NICE (couplings=3, hidden=16, blocks=0, num_classes=0) on 1×28×28 images",
        ),
        (
            Glow(in_channels=1, image_size=8, levels=2, steps=1, hidden=8),
            "Glow (levels=2, steps=1, hidden=8, coupling=affine, permutation=lu, spline_bins=8, "
            "spline_bound=3.0, num_classes=0, label_embedding_dim=0, attention_heads=0, "
            "attention_levels=None) on 1×8×8 images",
        ),
        (
            RealNVP(in_channels=3, image_size=8, scales=1, hidden=8, blocks=1),
            "RealNVP (scales=1, hidden=8, blocks=1, coupling=affine, batch_norm=False, "
            "spline_bins=8, spline_bound=3.0, num_classes=0) on 3×8×8 images",
        ),
    ],
)
def test_the_header_describes_each_architecture_by_its_own_arguments(
    flow: Any, description: str
) -> None:
    demo = Demo(GlowModule(flow).model)
    assert demo.description == description
    assert "levels" not in description or "Glow" in description
