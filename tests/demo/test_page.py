"""The served demo page driven in headless Chromium.

The tests start the demo on a free loopback port, click through each tab with Playwright
(Debian's ``chromium``; Playwright's own browser download is not used) and compare the images the
page receives with the handlers' results, pixel for pixel. Every request the page makes to
another host is blocked and fails the test: the demo must work offline.

``GLOWAPP_DEMO_SCREENSHOTS=docs`` also saves a screenshot of each tab there (from the session's
briefly trained model instead of the tiny one, so the pictures show clothes).
"""

from __future__ import annotations

import io
import os
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.demo_pages import CELL, FACTOR, cell, hidden_pixels, model_view, pixels, upload
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from glowapp.demo.app import build_app, launch
from glowapp.demo.examples import FASHION_MNIST_EXAMPLES
from glowapp.demo.handlers import Demo

pytestmark = pytest.mark.usefixtures("single_thread")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("GLOWAPP_DEMO_SCREENSHOTS")
TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo: Demo, examples: list[Path], example_sets: dict[str, list[Path]]) -> Iterator[str]:
    """The demo served on a free loopback port; yields its URL."""
    app = build_app(demo, examples, example_sets)
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
    for side in ("start", "end"):  # both photos loaded before the click (a busy machine is slow)
        page.locator(f"#interpolate-{side} img").first.wait_for()
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
    # (The progress bar's ticks are checked in test_handlers.py: at ~25 fast iterations it can come
    # and go between two polls of the page, so waiting for it here would race.)
    completion = pixels(result(page, "inpaint-completion"))[..., 0]
    hidden = hidden_pixels(result(page, "inpaint-masked"))
    rows = np.flatnonzero(hidden.any(axis=1))
    assert 1 <= len(rows) <= 8 and 5 <= rows.mean() <= 22, "the stroke is a band across the middle"
    summary = page.locator("#inpaint-summary").inner_text()
    assert re.match(rf"{hidden.sum()} of 784 pixels filled in (\d+) iterations", summary)
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


def test_manipulate_tab_moves_an_example_along_an_example_direction(
    page: Page, demo: Demo, examples: list[Path], example_sets: dict[str, list[Path]]
) -> None:
    open_tab(page, "Manipulate")
    page.locator("#manipulate-examples .gallery-item").first.click()
    page.locator("#manipulate-image img").first.wait_for()
    page.locator("#manipulate-sets").get_by_text("ankle_boot → sneaker").click()  # a boot
    for name in ("positive", "negative"):  # both sets loaded before the click
        expect(page.locator(f"#manipulate-{name}").get_by_text(".png")).to_have_count(8)
    page.locator("#manipulate-button").click()
    shown = result(page, "manipulate-output")
    assert shown.size == ((5 * CELL + 2) * FACTOR, (CELL + 2) * FACTOR)
    positive, negative = ([upload(p) for p in example_sets[k]] for k in ("sneaker", "ankle_boot"))
    expected = demo.manipulate(upload(examples[0]), positive, negative, 1.5)
    assert np.array_equal(pixels(shown), pixels(expected))
    assert np.array_equal(cell(pixels(shown), 0, 0), model_view(examples[0]))  # alpha·0: the input
    assert not np.array_equal(cell(pixels(shown), 0, 4), model_view(examples[0]))
    screenshot(page, "manipulate")
    page.locator("#manipulate-negative button[aria-label='Clear']").click()
    page.locator("#manipulate-button").click()
    page.get_by_text("the negative set is empty").wait_for()
