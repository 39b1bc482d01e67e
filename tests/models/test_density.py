"""Every model of the registry with a 2-D form (``plane``: image models on a two-pixel 1×1×2
image, and the flow family's 2-D VectorFlow models): ``exp(log p)`` integrates to one.

``log p(x) = log N(ε; 0, I) + log|det ∂ε/∂x|``: a wrong log-det anywhere on the plane, or a map
that is not onto, shows up as missing or extra mass (float64 trapezoid rule on a box that the
mass of 4000 decoded latents, widened, lies in)."""

from __future__ import annotations

import pytest
from helpers.density import sample_box, trapezoid_2d
from helpers.model_cases import PLANES, ModelCase, ids

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("case", PLANES, ids=ids(PLANES))
def test_density_integrates_to_one(case: ModelCase) -> None:
    assert case.plane is not None
    plane = case.plane()
    lo, hi = sample_box(plane.to_data)
    mass = trapezoid_2d(plane.log_prob, lo, hi, plane.grid)
    assert abs(mass - 1.0) < plane.atol, mass
