"""glowapp.generate.interpolation: latent paths between images, and the checks of its arguments."""

from __future__ import annotations

import pytest
import torch
from helpers.generation import tiny_glow
from helpers.trained import Trained

from glowapp.generate import interpolate
from glowapp.module import GlowModule

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("mode", ["linear", "spherical"])
def test_interpolation_endpoints_reproduce_the_inputs(
    module: GlowModule, trained_model: Trained, mode: str
) -> None:
    images = trained_model.test_images(8)
    a, b = images[:4], images[4:]
    path = interpolate(module, a, b, steps=6, mode=mode)
    assert path.shape == (4, 6, 1, 28, 28)
    assert (path[:, 0] - a / 255).abs().max() <= 1 / 255 + 1e-6
    assert (path[:, -1] - b / 255).abs().max() <= 1 / 255 + 1e-6
    # In between, images differ from both ends (it is a path, not a copy).
    middle = path[:, 3]
    assert (middle - a / 255).abs().mean() > 0.01 and (middle - b / 255).abs().mean() > 0.01


def test_interpolation_accepts_float_images(module: GlowModule, trained_model: Trained) -> None:
    images = trained_model.test_images(2)
    path = interpolate(module, images[:1].float() / 255, images[1:].float() / 255, steps=2)
    assert torch.allclose(path[0], images.float() / 255, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize(
    ("steps", "mode", "shape_b", "message"),
    [
        (1, "linear", (1, 1, 28, 28), "steps must be at least 2 (the two endpoints), got 1"),
        (4, "cubic", (1, 1, 28, 28), "mode must be one of linear, spherical, got 'cubic'"),
        (
            4,
            "linear",
            (2, 1, 28, 28),
            "image batches differ in shape: (1, 1, 28, 28) vs (2, 1, 28, 28)",
        ),
    ],
)
def test_interpolation_arguments_are_checked(
    steps: int, mode: str, shape_b: tuple[int, ...], message: str
) -> None:
    a, b = torch.zeros(1, 1, 28, 28), torch.zeros(shape_b)
    with pytest.raises(ValueError) as info:
        interpolate(tiny_glow(), a, b, steps=steps, mode=mode)
    assert str(info.value) == message
