"""The "Is this image like the training data?" tab's handler, called directly: every score with
its verdict against the reference's threshold, the histograms, and refused uploads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.demo_pages import upload

import glowapp
from glowapp.demo.handlers import Demo, DemoInputError, LikenessCheck
from glowapp.ood import ALL, BEST

pytestmark = pytest.mark.usefixtures("single_thread")

REFERENCE = 24
"""Reference images the tests fit on (the tab fits on 200)."""


@pytest.fixture
def check(checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LikenessCheck:
    """The tab's check with a background model, fitting on a few test images (the data set is
    unpacked under ``tmp_path``, never under the repository)."""
    monkeypatch.chdir(tmp_path)
    model = glowapp.load(checkpoint)
    return LikenessCheck(model, background=glowapp.load(checkpoint), reference_size=REFERENCE)


def test_every_score_has_a_verdict_against_its_threshold(
    check: LikenessCheck, examples: list[Path]
) -> None:
    result = check.judge(upload(examples[0]))
    names = [row[0] for row in result.rows]
    assert names[0] == BEST and sorted(names) == sorted(ALL)
    detector = check.detector()
    for name, value, threshold, verdict in result.rows:
        assert threshold == round(detector.thresholds[name], 4)
        assert verdict == ("outlier" if value > threshold else "typical")
    assert result.plot.width > 400 and result.plot.height > 200
    assert f"{REFERENCE} reference images (fashion-mnist:test)" in result.summary
    assert result.summary.startswith(f"{examples[0].name}: {result.rows[0][3]} by the {BEST} score")
    photo = check.judge(upload(examples[-1]))  # a photo: converted and resized, and said so
    assert "to fit the model" in photo.summary


def test_the_reference_is_fitted_once_whatever_the_concurrency(
    check: LikenessCheck, examples: list[Path]
) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda path: check.judge(upload(path)).rows, examples[:3]))
    assert check.detector() is check.detector()
    assert results[0] == check.judge(upload(examples[0])).rows


def test_refused_uploads(check: LikenessCheck, not_an_image: Path) -> None:
    with pytest.raises(DemoInputError, match="^upload an image or pick an example"):
        check.judge(None)
    with pytest.raises(DemoInputError, match=r"^notes\.png: not an image file"):
        check.judge(upload(not_an_image))


def test_without_a_background_model_ratio_is_left_out(demo: Demo) -> None:
    assert demo.likeness.names == [name for name in ALL if name != "ratio"]
