"""Building the models: image sizes (given or learnt from the first batch), input and
constructor validation, and the public names."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from helpers.models import images

from glowapp.models import NICE, Glow, MultiScaleFlow, RealNVP


def test_image_size_is_learnt_from_first_batch() -> None:
    """Without ``image_size`` the first batch fixes it; it is checked afterwards and checkpointed."""
    makers: list[Callable[[], MultiScaleFlow]] = [
        lambda: Glow(1, levels=2, steps=1, hidden=8),
        lambda: RealNVP(1, scales=2, hidden=8, blocks=1),
    ]
    for make in makers:
        model = make()
        with pytest.raises(RuntimeError, match="image size"):
            model.latent_shapes()
        model.encode(images(2, 1, 12, 8))
        assert model.image_size == (12, 8)
        assert model.latent_shapes()[-1][1:] == (12 // model.divisor, 8 // model.divisor)
        with pytest.raises(ValueError, match="built for 12x8 images, got 8x8"):
            model.encode(images(2, 1, 8))
        clone = make()
        clone.load_state_dict(model.state_dict())
        assert clone.image_size == (12, 8)


def test_input_validation() -> None:
    """Wrong channels, sizes not divisible by ``2**levels`` and non-4-D inputs raise ValueError."""
    glow = Glow(3, levels=3, steps=1, hidden=8)
    with pytest.raises(ValueError, match="expects 3 channels, got 1"):
        glow.encode(images(2, 1, 32))
    with pytest.raises(ValueError, match="multiples of 8"):
        glow.encode(images(2, 3, 28))
    assert not glow.has_image_size  # a rejected batch does not fix the size
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        glow.encode(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="multiples of 4"):
        Glow(1, levels=2, steps=1, hidden=8, image_size=30)
    with pytest.raises(ValueError, match="multiples of 2"):
        RealNVP(1, scales=2, hidden=8, blocks=1, image_size=(28, 27))
    with pytest.raises(ValueError, match="1 channels, got 3"):
        NICE(1, image_size=4, hidden=8).encode(images(2, 3, 4))
    with pytest.raises(ValueError, match="built for 4x4 images, got 8x8"):
        NICE(1, image_size=4, hidden=8).encode(images(2, 1, 8))
    with pytest.raises(ValueError, match="expected 2 latents"):
        Glow(1, levels=2, steps=1, hidden=8, image_size=8).decode([torch.zeros(1, 8, 1, 1)])


def test_constructor_validation() -> None:
    """Nonsensical hyper-parameters raise ValueError naming the problem."""
    with pytest.raises(ValueError, match="levels and steps"):
        Glow(3, levels=0)
    with pytest.raises(ValueError, match="permutation"):
        Glow(3, levels=1, steps=1, hidden=8, permutation="sort")
    with pytest.raises(ValueError, match="coupling"):
        Glow(3, levels=1, steps=1, hidden=8, coupling="cubic")
    with pytest.raises(ValueError, match="scales"):
        RealNVP(3, scales=0)
    with pytest.raises(ValueError, match="couplings"):
        NICE(1, image_size=4, couplings=0)
    with pytest.raises(ValueError, match="image_size"):
        NICE(1, image_size=0)
    with pytest.raises(ValueError, match="channels"):
        Glow(0, levels=1, steps=1, hidden=8)


def test_public_imports() -> None:
    """The package exposes the three assemblies."""
    from glowapp.models import NICE as NICE_
    from glowapp.models import Glow as Glow_
    from glowapp.models import RealNVP as RealNVP_

    assert all(issubclass(cls, MultiScaleFlow) for cls in (Glow_, RealNVP_, NICE_))
