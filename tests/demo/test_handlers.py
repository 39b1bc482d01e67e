"""The web demo's handlers, called directly: sizes, seeds, concurrency, uploads and form values.

That the checks of glowapp.generate reach the page unchanged is ``test_errors.py``'s; the page in
a browser is ``test_page.py``'s.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.demo_pages import CELL, FACTOR, SIDE, cell, hidden_pixels, model_view, pixels, upload
from PIL import Image

from glowapp import GlowModule
from glowapp.demo.handlers import DISPLAY_SIDE, MAX_UPLOAD_BYTES, Demo, DemoInputError
from glowapp.generate import sample_grid
from glowapp.models import Glow

pytestmark = pytest.mark.usefixtures("single_thread")


def test_sample_grid_has_the_requested_size_and_follows_the_seed(demo: Demo) -> None:
    image = demo.sample(0.7, 6, 1)
    assert image.size == ((3 * CELL + 2) * FACTOR, (2 * CELL + 2) * FACTOR)  # ⌈√6⌉ = 3 wide
    assert np.array_equal(pixels(image), pixels(demo.sample(0.7, 6, 1)))
    assert not np.array_equal(pixels(image), pixels(demo.sample(0.7, 6, 2)))
    assert cell(pixels(image), 0, 0).std() > 0


def test_the_guidance_slider_is_the_samplers_guidance() -> None:
    torch.manual_seed(0)
    flow = Glow(in_channels=1, image_size=8, levels=2, steps=1, hidden=8, num_classes=3,
                label_embedding_dim=4)  # fmt: skip
    module = GlowModule(flow, label_dropout=0.2)
    with torch.no_grad():  # conditioning layers start at zero: make the label matter
        for name, parameter in module.named_parameters():
            if "label" in name or "cond_proj" in name:
                parameter.normal_(0.0, 0.05)
    demo = Demo(module.model)
    plain, guided = (np.asarray(demo.sample(0.5, 4, 0, w)) for w in (0.0, 3.0))
    assert not np.array_equal(plain, guided)
    expected = sample_grid(module.model, [0.5], 4, 0, guidance=3.0)
    assert np.array_equal(guided, np.asarray(demo._display(expected, 2)))
    with pytest.raises(DemoInputError, match="guidance must be at most"):
        demo.sample(1.0, 4, 0, 1e6)


def test_concurrent_requests_get_their_own_results(demo: Demo, examples: list[Path]) -> None:
    seeds = list(range(6))
    alone = [pixels(demo.sample(1.0, 4, seed)) for seed in seeds]
    painted = [upload(examples[0]), [], "center", 20]
    inpainted = pixels(demo.inpaint(*painted).completion)
    with ThreadPoolExecutor(max_workers=4) as pool:
        inpainting = pool.submit(demo.inpaint, *painted)
        together = list(pool.map(lambda seed: pixels(demo.sample(1.0, 4, seed)), seeds))
        assert np.array_equal(pixels(inpainting.result().completion), inpainted)
    for seed, mine, theirs in zip(seeds, alone, together, strict=True):
        assert np.array_equal(mine, theirs), f"seed {seed} changed under concurrency"


def test_uploads_that_are_not_images_or_too_big_are_refused_by_name(
    demo: Demo, not_an_image: Path, tmp_path: Path
) -> None:
    with pytest.raises(DemoInputError, match=r"^notes\.png: not an image file") as info:
        demo.score([upload(not_an_image)])
    assert str(not_an_image.parent) not in str(info.value)  # the server's path stays private
    big = tmp_path / "huge.png"
    with big.open("wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(DemoInputError, match=r"^huge\.png: 10\.0 MiB is over the upload limit"):
        demo.interpolate(upload(big), upload(big), 4, "linear")


def test_the_demos_own_form_checks(demo: Demo, examples: list[Path]) -> None:
    """Whole numbers, the per-request caps and missing uploads are the demo's own checks."""
    with pytest.raises(DemoInputError, match="^number of images must be at most 64 in this demo"):
        demo.sample(0.7, 65, 0)
    with pytest.raises(DemoInputError, match="^temperature must be at most 1.5 in this demo"):
        demo.sample(2.0, 4, 0)
    with pytest.raises(DemoInputError, match="^seed: enter a number$"):
        demo.sample(0.7, 4, None)
    with pytest.raises(DemoInputError, match="^steps must be a whole number, got 2.5$"):
        demo.interpolate(upload(examples[0]), upload(examples[1]), 2.5, "linear")
    with pytest.raises(DemoInputError, match="^steps must be at most 16 in this demo, got 17"):
        demo.interpolate(upload(examples[0]), upload(examples[1]), 17, "linear")
    with pytest.raises(DemoInputError, match="upload two images"):
        demo.interpolate(upload(examples[0]), None, 4, "linear")
    with pytest.raises(DemoInputError, match="^iterations must be at most 2000 in this demo"):
        demo.inpaint(upload(examples[0]), [], "center", 2001)
    with pytest.raises(DemoInputError, match="score at most 64 images"):
        demo.score([upload(examples[0])] * 65)


def test_inpaint_fills_the_painted_region_else_the_preset(
    demo: Demo, examples: list[Path], tmp_path: Path
) -> None:
    layer = np.zeros((SIDE, SIDE, 4), dtype=np.uint8)
    layer[:, SIDE // 2 :] = (255, 0, 255, 255)  # right half painted
    Image.fromarray(layer).save(tmp_path / "layer.png")
    Image.fromarray(np.zeros_like(layer)).save(tmp_path / "blank.png")
    image = upload(examples[0])
    steps: list[int] = []
    layers = [tmp_path / "blank.png", tmp_path / "layer.png"]
    painted = demo.inpaint(image, layers, "center", 5, progress=steps.append)
    assert steps == [1, 2, 3, 4, 5]
    assert painted.summary.startswith("392 of 784 pixels filled in 5 iterations")
    assert painted.completion.size == (DISPLAY_SIDE, DISPLAY_SIDE)  # one image: no padding
    assert np.array_equal(hidden_pixels(painted.masked)[:, SIDE // 2 :], np.ones((SIDE, SIDE // 2)))
    truth = model_view(examples[0])
    completion = pixels(painted.completion)[..., 0]
    assert np.array_equal(completion[:, : SIDE // 2], truth[:, : SIDE // 2])
    assert np.array_equal(pixels(painted.original)[..., 0], truth)
    preset = demo.inpaint(image, [tmp_path / "blank.png"], "center", 5)
    assert preset.summary.startswith("196 of 784 pixels")  # the centred 14x14 box
