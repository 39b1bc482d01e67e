"""The default-size model registry and a prepared model per entry, shared by the model tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from helpers.models import images, prepare
from torch import Tensor

from glowapp.models import NICE, Glow, MultiScaleFlow, RealNVP

ModelCase = tuple[str, Callable[[], MultiScaleFlow], tuple[int, int, int]]

MODELS: list[ModelCase] = [
    *(
        (
            f"glow-{coupling}-{perm}",
            lambda c=coupling, p=perm: Glow(
                3, levels=3, steps=4, hidden=32, coupling=c, permutation=p
            ),
            (3, 32, 32),
        )
        for coupling in ("affine", "additive")
        for perm in ("lu", "conv", "shuffle", "reverse")
    ),
    ("glow-grey-28", lambda: Glow(1, levels=2, steps=4, hidden=32), (1, 28, 28)),
    ("glow-spline", lambda: Glow(1, levels=2, steps=4, hidden=32, coupling="spline"), (1, 28, 28)),
    ("realnvp", lambda: RealNVP(1, scales=2, hidden=16, blocks=2), (1, 28, 28)),
    (
        "realnvp-spline",
        lambda: RealNVP(1, scales=2, hidden=16, blocks=1, coupling="spline"),
        (1, 28, 28),
    ),
    ("realnvp-bn", lambda: RealNVP(1, scales=2, hidden=16, blocks=2, batch_norm=True), (1, 28, 28)),
    (
        "realnvp-additive-rgb",
        lambda: RealNVP(3, scales=2, hidden=16, blocks=1, coupling="additive"),
        (3, 16, 16),
    ),
    ("nice", lambda: NICE(1, image_size=28, couplings=4, hidden=32), (1, 28, 28)),
]


@pytest.fixture(scope="session", params=MODELS, ids=[m[0] for m in MODELS])
def model_and_data(request: pytest.FixtureRequest) -> tuple[MultiScaleFlow, Tensor]:
    """A prepared model and a test batch ``[4, C, H, W]``, built once per session (tests must
    not modify it: copy it first)."""
    _, make, (c, h, w) = request.param
    torch.manual_seed(0)
    model = prepare(make(), images(8, c, h, w))
    return model, images(4, c, h, w)
