"""The web demo: its handlers called directly, and the served page driven in headless Chromium.

The browser tests start the demo on a free loopback port, click through each tab with
Playwright (Debian's ``chromium``; Playwright's own browser download is not used) and compare
the images the page receives with the handlers' results, pixel for pixel. Every request the
page makes to another host is blocked and fails the test: the demo must work offline.

``GLOWAPP_DEMO_SCREENSHOTS=docs`` also saves a screenshot of each tab there (from the
session's briefly trained model instead of the tiny one, so the pictures show clothes).
"""

from __future__ import annotations

import io
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from trained import fashion_mnist

from glowapp import GlowModule
from glowapp.demo.app import build_app, launch
from glowapp.demo.examples import FASHION_MNIST_EXAMPLES, write_examples
from glowapp.demo.handlers import (
    DISPLAY_SIDE,
    MAX_UPLOAD_BYTES,
    Demo,
    DemoInputError,
    Upload,
)
from glowapp.generate import load_module
from glowapp.tools import TOOLS

pytestmark = pytest.mark.usefixtures("single_thread")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("GLOWAPP_DEMO_SCREENSHOTS")
SIDE = 28
FACTOR = DISPLAY_SIDE // SIDE  # the demo's display enlargement of 28x28 images
CELL = SIDE + 2  # an image plus tile()'s padding
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A tiny Glow fitted for a few steps to Fashion-MNIST test images (about a second)."""
    if SCREENSHOTS:
        return request.getfixturevalue("trained_model").checkpoint
    directory = tmp_path_factory.mktemp("demo_model")
    data = fashion_mnist(directory / "data", batch_size=128)
    data.setup("test")
    images = next(iter(data.test_dataloader()))[0]
    torch.manual_seed(0)
    module = GlowModule(image_shape=(1, SIDE, SIDE), levels=2, steps=2, hidden=16)
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-3)
    for _ in range(30):  # the first step also initialises ActNorm from the data
        loss = module.bits_per_dim(images).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = directory / "tiny.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def demo(checkpoint: Path) -> Demo:
    return Demo(load_module(checkpoint))


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="module")
def not_an_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("uploads") / "notes.png"
    path.write_text("shopping list: milk, eggs\n")
    return path


def upload(path: Path) -> Upload:
    return Upload(path, path.name)


def pixels(image: Image.Image) -> np.ndarray:
    """A display image shrunk back to model pixels: ``[H, W, 3]`` uint8."""
    return np.asarray(image.convert("RGB"))[::FACTOR, ::FACTOR]


def cell(grid: np.ndarray, row: int, column: int) -> np.ndarray:
    """Image ``(row, column)`` of a :func:`pixels` grid, ``[28, 28]`` (first channel)."""
    top, left = 2 + row * CELL, 2 + column * CELL
    return grid[top : top + SIDE, left : left + SIDE, 0]


def hidden_pixels(masked: Image.Image) -> np.ndarray:
    """Where a masked view (one image) shows the mask's magenta, ``[28, 28]`` bool."""
    return (pixels(masked) == (255, 0, 255)).all(axis=-1)


def model_view(path: Path) -> np.ndarray:
    """What the model sees of an example photo, ``[28, 28]`` uint8."""
    return np.asarray(Image.open(path).convert("L"))


# ---- handlers ---------------------------------------------------------------------------------


def test_sample_grid_has_the_requested_size_and_follows_the_seed(demo: Demo) -> None:
    image = demo.sample(0.7, 6, 1)
    assert image.size == ((3 * CELL + 2) * FACTOR, (2 * CELL + 2) * FACTOR)  # ⌈√6⌉ = 3 wide
    assert np.array_equal(pixels(image), pixels(demo.sample(0.7, 6, 1)))
    assert not np.array_equal(pixels(image), pixels(demo.sample(0.7, 6, 2)))
    assert cell(pixels(image), 0, 0).std() > 0


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


def test_form_values_are_checked(demo: Demo, examples: list[Path]) -> None:
    with pytest.raises(DemoInputError, match="number of images must be between 1 and 64"):
        demo.sample(0.7, 0, 0)
    with pytest.raises(DemoInputError, match="seed must be between 0 and 4294967295, got None"):
        demo.sample(0.7, 4, None)
    with pytest.raises(DemoInputError, match="steps must be between 2 and 16"):
        demo.interpolate(upload(examples[0]), upload(examples[1]), 1, "linear")
    with pytest.raises(DemoInputError, match="upload two images"):
        demo.interpolate(upload(examples[0]), None, 4, "linear")
    with pytest.raises(DemoInputError, match="paint the region to fill"):
        demo.inpaint(upload(examples[0]), [], "drawn", 10)


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


def test_demo_command_explains_how_to_install_gradio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    args = TOOLS["demo"].parser().parse_args(["--ckpt", str(checkpoint)])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    monkeypatch.delitem(sys.modules, "glowapp.demo.app")
    assert TOOLS["demo"].run(["--ckpt", str(checkpoint)]) == 1
    assert "pip install 'glowapp[demo]'" in capsys.readouterr().err


# ---- the page in a browser --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo: Demo, examples: list[Path]) -> Iterator[str]:
    """The demo served on a free loopback port; yields its URL."""
    app = build_app(demo, examples)
    port = free_port()
    launch(app, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (scripts/setup.sh does)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser, server: str) -> Iterator[Callable[[], Page]]:
    """Opens fresh pages on the demo; fails if a page asks any other host for anything."""
    pages: list[Page] = []
    elsewhere: list[str] = []

    def only_the_demo(route: Route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    def open_page() -> Page:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.route("**/*", only_the_demo)
        page.goto(server)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()
    assert not elsewhere, f"the page reached outside the demo: {elsewhere}"


@pytest.fixture
def page(open_page: Callable[[], Page]) -> Page:
    return open_page()


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def result(page: Page, elem_id: str) -> Image.Image:
    """Wait for the image shown in output ``elem_id`` and download it as the browser did."""
    img = page.locator(f"#{elem_id} img")
    img.wait_for()
    response = page.request.get(img.get_attribute("src"))
    assert response.ok, response.status
    return Image.open(io.BytesIO(response.body()))


def screenshot(page: Page, tab: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"demo_{tab}.png"), full_page=True)


def test_sample_tab_gives_each_user_their_own_seeded_grid(
    open_page: Callable[[], Page], demo: Demo
) -> None:
    mine, theirs = open_page(), open_page()
    theirs.get_by_label("seed").fill("7")
    for page in (mine, theirs):
        page.locator("#sample-button").click()
    for page, seed in ((mine, 0), (theirs, 7)):
        shown = result(page, "sample-output")
        assert shown.size == ((4 * CELL + 2) * FACTOR,) * 2  # 16 images by default: 4x4
        assert np.array_equal(pixels(shown), pixels(demo.sample(0.7, 16, seed)))
        assert cell(pixels(shown), 3, 3).std() > 0
    screenshot(mine, "sample")


def test_interpolate_tab_runs_an_example_pair(page: Page, demo: Demo, examples: list[Path]) -> None:
    open_tab(page, "Interpolate")
    page.locator("#interpolate-examples .tr-body").first.click()
    page.get_by_role("radio", name="spherical").check()
    page.locator("#interpolate-button").click()
    shown = result(page, "interpolate-output")
    assert shown.size == ((8 * CELL + 2) * FACTOR, (CELL + 2) * FACTOR)
    expected = demo.interpolate(upload(examples[0]), upload(examples[1]), 8, "spherical")
    assert np.array_equal(pixels(shown), pixels(expected))
    # The endpoints decode back to the two photos (up to float rounding).
    for column, example in ((0, examples[0]), (7, examples[1])):
        error = np.abs(cell(pixels(shown), 0, column).astype(int) - model_view(example))
        assert error.max() <= 1
    screenshot(page, "interpolate")


def test_inpaint_tab_fills_a_stroke_painted_with_the_mouse(
    page: Page, examples: list[Path]
) -> None:
    open_tab(page, "Inpaint")
    zoom = page.locator("#inpaint-editor").get_by_text(re.compile(r"^\d+%$"))
    empty_canvas_zoom = zoom.inner_text()
    page.locator("#inpaint-examples .gallery-item").first.click()
    expect(zoom).not_to_have_text(empty_canvas_zoom)  # the photo is laid out: ready to paint
    box = page.locator("#inpaint-editor canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 100, y)  # hover first: the editor shows its brush, then paints
    page.wait_for_timeout(200)
    page.mouse.down()
    page.mouse.move(x + 100, y, steps=10)
    page.mouse.up()
    page.locator("#inpaint-button").click()
    page.get_by_text("inpainting").first.wait_for()  # the progress bar of the 300 iterations
    completion = pixels(result(page, "inpaint-completion"))[..., 0]
    hidden = hidden_pixels(result(page, "inpaint-masked"))
    rows = np.flatnonzero(hidden.any(axis=1))
    assert 1 <= len(rows) <= 8 and 5 <= rows.mean() <= 22, "the stroke is a band across the middle"
    summary = page.locator("#inpaint-summary").inner_text()
    assert summary.startswith(f"{hidden.sum()} of 784 pixels filled in 300 iterations")
    truth = model_view(examples[0])
    assert np.array_equal(pixels(result(page, "inpaint-original"))[..., 0], truth)
    assert np.array_equal(completion[~hidden], truth[~hidden])
    screenshot(page, "inpaint")


def test_score_tab_scores_uploads_and_refuses_other_files(
    page: Page, demo: Demo, examples: list[Path], not_an_image: Path
) -> None:
    open_tab(page, "Score")
    chosen = [examples[0], examples[FASHION_MNIST_EXAMPLES]]  # a garment and a photo
    page.locator("#score-files input[type=file]").set_input_files([str(p) for p in chosen])
    page.locator("#score-button").click()
    table = page.locator("#score-table")
    for i, row in enumerate(demo.score([upload(path) for path in chosen])):
        name, bits_per_dim = (table.get_by_test_id(f"cell-{i}-{j}") for j in (0, 1))
        expect(name).to_have_text(row.name)
        assert float(bits_per_dim.inner_text()) == pytest.approx(row.bits_per_dim, abs=1e-4)
    screenshot(page, "score")
    page.locator("#score-files input[type=file]").set_input_files(str(not_an_image))
    page.locator("#score-button").click()
    page.get_by_text("notes.png: not an image file").wait_for()
