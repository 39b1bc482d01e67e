"""Generation from a class-conditional model: labels along a sample grid's row, and
interpolation paths that end exactly at the two images whatever the labels."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import perturb
from helpers.generation import tiny_glow

from glowapp import GlowModule
from glowapp.generate import class_labels, interpolate, sample_grid

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def conditional() -> GlowModule:
    """A tiny 10-class Glow with a label-dependent top prior and classifier (eval mode)."""
    module = tiny_glow(num_classes=10)
    perturb(module.flow.top, 0.3)
    perturb(module.flow.classifier, 0.3)
    return module.eval()


def test_sample_grid_labels(conditional: GlowModule) -> None:
    """Labels repeat along the row; without labels a conditional model cycles the classes."""
    assert class_labels(conditional, [4, 7], 5).tolist() == [4, 7, 4, 7, 4]
    assert class_labels(conditional, None, 12).tolist() == [*range(10), 0, 1]
    grid = sample_grid(conditional, [0.0], 3, labels=[2])
    assert torch.equal(grid[0, 0], grid[0, 1]) and torch.equal(grid[0, 0], grid[0, 2])
    assert torch.equal(grid[0, :1], conditional.sample(1, 0.0, labels=torch.tensor([2])))
    other = sample_grid(conditional, [0.0], 1, labels=[5])
    assert not torch.equal(other[0, 0], grid[0, 0])  # the class mean depends on the label


def test_interpolation_of_a_conditional_model(conditional: GlowModule) -> None:
    """Exact endpoints, and the midpoint of the latents encoded with one label."""
    torch.manual_seed(1)
    a, b = (torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8) for _ in range(2))
    path = interpolate(conditional, a, b, steps=5)
    assert path.shape == (2, 5, 1, 28, 28)
    assert torch.equal((path[:, 0] * 255).round().to(torch.uint8), a)
    assert torch.equal((path[:, -1] * 255).round().to(torch.uint8), b)
    labels = torch.tensor([3, 3])
    za, zb = conditional.encode(a, labels=labels), conditional.encode(b, labels=labels)
    mid = conditional.decode([(u + v) / 2 for u, v in zip(za, zb, strict=True)], labels)
    torch.testing.assert_close(path[:, 2], mid, atol=1.5 / 255, rtol=0)
