"""glowapp.generate.interpolation: latent paths between images, and the checks of its arguments."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from helpers.generation import tiny_glow
from helpers.trained import Trained
from torch import Tensor

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


def test_the_modes_share_their_ends_and_differ_between(
    module: GlowModule, trained_model: Trained
) -> None:
    """On the trained model: both modes decode the same endpoints, and different images in
    between (slerp keeps the latents' norm, the chord shrinks it)."""
    images = trained_model.test_images(4)
    a, b = images[:2], images[2:]
    linear = interpolate(module, a, b, steps=5, mode="linear")
    spherical = interpolate(module, a, b, steps=5, mode="spherical")
    torch.testing.assert_close(spherical[:, [0, -1]], linear[:, [0, -1]], rtol=0, atol=1e-6)
    assert float((spherical[:, 2] - linear[:, 2]).abs().mean()) > 1e-3


class LatentsArePixels(torch.nn.Module):
    """A stand-in model whose latent is the image itself (one level): ``interpolate``'s output is
    then its latent path, which the tests compare with the closed forms."""

    num_classes = 0  # unconditional, as ImageFlow and its flow say
    flow = SimpleNamespace(num_classes=0, null_label=None)

    def encode(self, images: Tensor, labels: Tensor | None = None) -> list[Tensor]:
        return [images.float()]

    def decode(self, latents: list[Tensor], labels: Tensor | None = None, **_: object) -> Tensor:
        return latents[0]


def unit(angle: float, norm: float = 1.0) -> Tensor:
    """``norm · (cos angle, sin angle)`` as a 1×1×1×2 "image"."""
    return torch.tensor([math.cos(angle), math.sin(angle)]).mul(norm).view(1, 1, 1, 2)


def test_spherical_paths_follow_the_great_circle_and_linear_ones_the_chord() -> None:
    """Between orthogonal unit latents: slerp at ``t`` is at angle ``t·90°`` with norm 1, the
    linear path is ``(1 − t)·a + t·b`` (norm √½ half way)."""
    a, b = unit(0.0), unit(math.pi / 2)
    t = torch.linspace(0.0, 1.0, 5)
    spherical = interpolate(LatentsArePixels(), a, b, steps=5, mode="spherical").view(5, 2)
    linear = interpolate(LatentsArePixels(), a, b, steps=5, mode="linear").view(5, 2)
    angles = t * math.pi / 2
    torch.testing.assert_close(spherical, torch.stack([angles.cos(), angles.sin()], dim=1))
    torch.testing.assert_close(linear, torch.stack([1 - t, t], dim=1))
    assert float(spherical[2].norm()) == pytest.approx(1.0)
    assert float(linear[2].norm()) == pytest.approx(math.sqrt(0.5))


def test_slerp_of_unequal_norms_and_of_parallel_latents() -> None:
    """Slerp's weights ``sin((1 − t)ω)/sin ω`` and ``sin(tω)/sin ω`` with ``ω`` the angle between
    the latents (here 60°, norms 2 and 1); parallel latents (``ω = 0``) fall back to linear."""
    a, b = unit(0.0, 2.0), unit(math.pi / 3)
    omega = math.pi / 3
    path = interpolate(LatentsArePixels(), a, b, steps=4, mode="spherical").view(4, 2)
    for t, point in zip(torch.linspace(0.0, 1.0, 4).tolist(), path, strict=True):
        wa, wb = math.sin((1 - t) * omega), math.sin(t * omega)
        expected = (wa * a + wb * b).view(2) / math.sin(omega)
        torch.testing.assert_close(point, expected)
    parallel = interpolate(LatentsArePixels(), a, 3 * a, steps=3, mode="spherical")
    torch.testing.assert_close(parallel.view(3, 2), torch.stack([a, 2 * a, 3 * a]).view(3, 2))


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
