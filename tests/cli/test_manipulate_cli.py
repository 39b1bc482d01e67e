"""``glowapp manipulate``: image sets from files, folders and globs, classes of a data set, saved
directions, the grid, ``--out-dir``'s files, and one error line for each bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.generation import tiny_glow
from helpers.trained import Trained
from PIL import Image

from glowapp.cli import main
from glowapp.generate import latent_direction
from glowapp.tools.directions import save_direction

pytestmark = pytest.mark.usefixtures("single_thread")

CELL = 28 + 2  # a 28x28 image plus tile()'s 2-pixel padding


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, trained_model: Trained) -> Path:
    """Test images as PNGs: ``shoe.png``, ``bag.png`` (to manipulate), ``pos/`` (a folder of
    three), ``neg_*.png`` (three, for a glob), ``empty/`` (a folder without images), ``notes.txt``."""
    root = tmp_path_factory.mktemp("manipulate")
    images = trained_model.test_images(9)[:, 0].numpy()
    (root / "pos").mkdir()
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("no images here")
    (root / "notes.txt").write_text("not an image")
    names = ["shoe", "bag", "pos/a", "pos/b", "pos/c", "neg_a", "neg_b", "neg_c"]
    for name, image in zip(names, images, strict=False):
        Image.fromarray(image).save(root / f"{name}.png")
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["manipulate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def test_sets_from_folders_and_globs_make_a_grid_and_one_file_per_result(
    tmp_path: Path, trained_model: Trained, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, out_dir = tmp_path / "grid.png", tmp_path / "results"
    code, stdout, err = run(
        capsys,
        "--ckpt", trained_model.checkpoint, "--device", "cpu",
        files / "shoe.png", files / "bag.png",
        "--positive", files / "pos",
        "--negative", files / "neg_*.png",
        "--alpha", 0, 1.5, 2, -1,
        "--out", out, "--out-dir", out_dir,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "positive: 3 images" in stdout and "negative: 3 images" in stdout
    with Image.open(out) as grid:
        # One column per alpha, a row per image, enlarged x4 (--scale auto for 28x28 images).
        assert grid.size == (4 * (4 * CELL + 2), 4 * (2 * CELL + 2))
    assert f"enlarged ×4; {4 * (4 * CELL + 2)}x{4 * (2 * CELL + 2)} pixels" in stdout
    names = {
        f"{stem}_a{alpha}.png" for stem in ("shoe", "bag") for alpha in ("0", "1.5", "2", "-1")
    }
    assert {path.name for path in out_dir.iterdir()} == names
    for stem in ("shoe", "bag"):
        with Image.open(out_dir / f"{stem}_a0.png") as result:
            assert (result.mode, result.size) == ("L", (28, 28))  # the model's resolution
        # alpha = 0 is the input, bit for bit; another alpha is not.
        assert np.array_equal(pixels(out_dir / f"{stem}_a0.png"), pixels(files / f"{stem}.png"))
        assert not np.array_equal(pixels(out_dir / f"{stem}_a2.png"), pixels(files / f"{stem}.png"))


def test_a_saved_direction_gives_the_same_grid(
    tmp_path: Path, trained_model: Trained, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--ckpt", trained_model.checkpoint, files / "shoe.png", "--alpha", 0, 1)
    saved = tmp_path / "d.pt"
    code, stdout, _ = run(
        capsys, *common, "--positive", files / "pos" / "a.png", files / "pos" / "b.png",
        "--negative", files / "neg_a.png", "--save-direction", saved, "--out", tmp_path / "a.png",
    )  # fmt: skip
    assert code == 0 and f"wrote {saved} (the direction)" in stdout
    code, _, _ = run(capsys, *common, "--direction", saved, "--out", tmp_path / "b.png")
    assert code == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_classes_of_the_test_split_give_the_direction(
    tmp_path: Path, trained_model: Trained, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid.png"
    code, _, err = run(
        capsys, "--ckpt", trained_model.checkpoint, files / "shoe.png", "--alpha", 0, 1,
        "--positive-class", 9, "--negative-class", 7, "--data-root", trained_model.data_root,
        "--out", out,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.is_file()


@pytest.fixture(scope="module")
def foreign_direction(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A direction computed with another (untrained, narrower) model."""
    module = tiny_glow().eval()
    images = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    direction = latent_direction(module, images, images + 1)
    return save_direction(direction, tmp_path_factory.mktemp("foreign") / "d.pt")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--positive", "{files}/empty", "--negative", "{files}/pos"), "the positive set is empty"),
        (("--positive", "{files}/pos", "--negative", "{files}/nothing*.png"), "the negative set"),
        (("--positive", "{files}/notes.txt", "--negative", "{files}/pos"), "{files}/notes.txt:"),
        (("--direction", "{foreign}"), "{foreign} was computed with another model (steps=2"),
        (("--direction", "{files}/notes.txt"), "{files}/notes.txt: not a direction file"),
        (("--positive-class", "9", "--negative-class", "7", "--data", "{files}/pos"), "this data"),
        (("--positive-class", "9"), "give both --positive-class and --negative-class"),
        ((), "give the direction one way"),
        (("--direction", "{foreign}", "--positive", "{files}/pos"), "give the direction one way"),
    ],
)
def test_bad_input_gets_one_error_line(
    tmp_path: Path,
    trained_model: Trained,
    files: Path,
    foreign_direction: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: tuple[str, ...],
    message: str,
) -> None:

    def fill(text: str) -> str:
        return text.format(files=files, foreign=foreign_direction)

    code, stdout, err = run(
        capsys, "--ckpt", trained_model.checkpoint, files / "shoe.png", *map(fill, arguments)
    )
    assert code == 1
    assert err.startswith(f"glowapp: error: {fill(message)}"), err
    assert err.count("\n") == 1
    assert not (tmp_path / "manipulate.png").exists()


def test_out_dir_refuses_to_write_a_file_twice(
    tmp_path: Path, trained_model: Trained, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "--ckpt", trained_model.checkpoint, files / "shoe.png", files / "pos" / "a.png",
        files / "pos" / "a.png", "--positive", files / "pos", "--negative", files / "neg_a.png",
        "--alpha", 1, "--out", tmp_path / "g.png", "--out-dir", tmp_path / "results",
    )  # fmt: skip
    assert code == 1
    assert err == (
        "glowapp: error: --out-dir would write a_a1.png twice: give images different names and "
        "each alpha once\n"
    )
    assert not (tmp_path / "results").exists()
