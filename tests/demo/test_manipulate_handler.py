"""The Manipulate tab's handler, called directly: its row, the API it calls, and its form checks.

The tab in a browser is ``test_page.py``'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.demo_pages import CELL, FACTOR, cell, model_view, pixels, upload

from glowapp.demo.handlers import MAX_SET, Demo, DemoInputError
from glowapp.generate import latent_direction, manipulate
from glowapp.images import load_image, tile

pytestmark = pytest.mark.usefixtures("single_thread")


def test_a_row_from_the_input_to_alpha_made_by_the_generation_api(
    demo: Demo, examples: list[Path], example_sets: dict[str, list[Path]]
) -> None:
    positive, negative = example_sets["ankle_boot"], example_sets["sneaker"]
    shown = demo.manipulate(
        upload(examples[0]), list(map(upload, positive)), list(map(upload, negative)), -2.0
    )
    assert shown.size == ((5 * CELL + 2) * FACTOR, (CELL + 2) * FACTOR)
    assert np.array_equal(cell(pixels(shown), 0, 0), model_view(examples[0]))

    def load(paths: list[Path]) -> torch.Tensor:
        return torch.stack([load_image(path, demo.image_shape).image for path in paths])

    direction = latent_direction(demo.model, load(positive), load(negative))
    row = manipulate(demo.model, load(examples[:1]), direction, [0.0, -0.5, -1.0, -1.5, -2.0])
    expected = (tile(row, 5) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(pixels(shown), expected)


def test_the_tabs_form_checks(demo: Demo, examples: list[Path]) -> None:
    image, some = upload(examples[0]), [upload(examples[1])]
    with pytest.raises(DemoInputError, match="^upload an image"):
        demo.manipulate(None, some, some, 1.0)
    with pytest.raises(DemoInputError, match="^alpha must be at most 3.0 in this demo"):
        demo.manipulate(image, some, some, 3.5)
    with pytest.raises(DemoInputError, match="^alpha must be at least -3.0 in this demo"):
        demo.manipulate(image, some, some, -3.5)
    with pytest.raises(DemoInputError, match=f"^the positive set holds at most {MAX_SET} images"):
        demo.manipulate(image, some * (MAX_SET + 1), some, 1.0)
    with pytest.raises(ValueError, match="^the negative set is empty"):
        demo.manipulate(image, some, [], 1.0)
