"""The ``glowapp sample|interpolate|inpaint|score`` commands, run on the session's trained model.

That every value a command passes on is checked by glowapp.generate, and that its error reaches
the user unchanged, is ``test_errors.py``'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from helpers.trained import Trained
from PIL import Image

from glowapp.cli import main
from glowapp.tools import TOOLS, tool
from glowapp.tools.sample import row_width

pytestmark = pytest.mark.usefixtures("single_thread")

CELL = 28 + 2  # a 28x28 image plus tile()'s 2-pixel padding
SCALE = 4  # the tools' default --scale (auto) for 28x28 images: cells of at least 96 pixels


def grid_size(columns: int, rows: int, scale: int = SCALE) -> tuple[int, int]:
    """(width, height) of a tile() grid of 28x28 images, enlarged ``scale`` times."""
    return scale * (columns * CELL + 2), scale * (rows * CELL + 2)


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def png_pixels(path: Path) -> np.ndarray:
    """A PNG's pixels, ``[H, W, 3]`` uint8."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def reported(stdout: str, path: Path) -> tuple[int, int]:
    """The (width, height) that the ``wrote PATH (...; WxH pixels)`` line gives for ``path``."""
    line = next(line for line in stdout.splitlines() if line.startswith(f"wrote {path} ("))
    width, height = line.rpartition("; ")[2].removesuffix(" pixels)").split("x")
    return int(width), int(height)


def cell(pixels: np.ndarray, row: int, column: int, scale: int = SCALE) -> np.ndarray:
    """Image ``(row, column)`` of an enlarged tile() grid, shrunk back to ``[28, 28, 3]``."""
    native = pixels[::scale, ::scale]
    top, left = 2 + row * CELL, 2 + column * CELL
    return native[top : top + 28, left : left + 28]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, trained_model: Trained) -> dict[str, Path]:
    """Inputs: two photos (skimage), a Fashion-MNIST test image, uniform noise, a mask image."""
    root = tmp_path_factory.mktemp("inputs")
    paths = {
        name: root / f"{name}.png" for name in ("astronaut", "camera", "real", "noise", "mask")
    }
    Image.fromarray(skimage.data.astronaut()).save(paths["astronaut"])
    Image.fromarray(skimage.data.camera()).save(paths["camera"])
    Image.fromarray(trained_model.test_images(1)[0, 0].numpy()).save(paths["real"])
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(noise).save(paths["noise"])
    mask = np.zeros((28, 28), dtype=np.uint8)
    mask[:, 14:] = 255
    Image.fromarray(mask).save(paths["mask"])
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("num", "temperatures", "columns", "rows"),
    [
        (6, (0, 0.7), 6, 2),  # several temperatures, num <= 16: one row each
        (17, (0.5, 1.0), 5, 8),  # num > 16: ⌈√17⌉ = 5 columns, 4 rows per temperature
        (6, (0.7,), 3, 2),  # one temperature: a square-ish ⌈√6⌉ = 3 columns
    ],
)
def test_sample_writes_one_row_per_temperature_enlarged(
    tmp_path: Path,
    trained_model: Trained,
    capsys: pytest.CaptureFixture[str],
    num: int,
    temperatures: tuple[float, ...],
    columns: int,
    rows: int,
) -> None:
    out = tmp_path / "samples.png"
    args = ("--num", num, "--temperature", *temperatures, "--seed", 1, "--device", "cpu")
    code, stdout, _ = run(capsys, "sample", "--ckpt", trained_model.checkpoint, *args, "--out", out)
    assert code == 0
    assert png_size(out) == reported(stdout, out) == grid_size(columns, rows)
    assert f"enlarged ×{SCALE}" in stdout


def test_sample_rows_hold_one_temperature_each(
    tmp_path: Path, trained_model: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    """Row r is temperature r: at T = 0 all samples are the mode, alike; at T = 1 they differ."""
    out = tmp_path / "samples.png"
    args = ("--num", 4, "--temperature", 0, 1, "--device", "cpu", "--out", out)
    assert run(capsys, "sample", "--ckpt", trained_model.checkpoint, *args)[0] == 0
    pixels = png_pixels(out)
    assert pixels.shape[:2] == grid_size(4, 2)[::-1]
    mode = [cell(pixels, 0, column) for column in range(4)]
    assert all(np.array_equal(image, mode[0]) for image in mode)
    assert not np.array_equal(cell(pixels, 1, 0), cell(pixels, 1, 1))


def test_scale_enlarges_by_nearest_neighbour(
    tmp_path: Path, trained_model: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--scale 1`` is native size; ``--scale K`` makes each native pixel a constant K×K block."""
    args = ("--num", 3, "--temperature", 0.5, 1, "--seed", 2, "--device", "cpu")
    pictures = {}
    for scale in (1, 3):
        out = tmp_path / f"x{scale}.png"
        argv = ("sample", "--ckpt", trained_model.checkpoint, *args, "--scale", scale, "--out", out)
        code, stdout, _ = run(capsys, *argv)
        assert code == 0
        assert png_size(out) == reported(stdout, out) == grid_size(3, 2, scale)
        assert ("enlarged ×3" in stdout) == (scale == 3) and stdout.count("enlarged") <= 1
        pictures[scale] = png_pixels(out)
    native, big = pictures[1], pictures[3]
    assert np.array_equal(big, native.repeat(3, axis=0).repeat(3, axis=1))
    assert native.std() > 0


def test_row_width_defaults() -> None:
    assert [row_width(n, 4) for n in (1, 8, 16, 17, 64)] == [1, 8, 16, 5, 8]
    assert [row_width(n, 1) for n in (1, 8, 16, 17, 64)] == [1, 3, 4, 5, 8]


def test_interpolate_converts_photos_and_writes_a_row(
    tmp_path: Path,
    trained_model: Trained,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "interp.png"
    photos = (files["astronaut"], files["camera"])
    args = ("--steps", 5, "--mode", "spherical", "--out", out)
    code, stdout, _ = run(capsys, "interpolate", "--ckpt", trained_model.checkpoint, *photos, *args)
    assert code == 0
    assert png_size(out) == reported(stdout, out) == grid_size(5, 1)
    assert "converted RGB→L and resized 512x512→28x28" in stdout


@pytest.mark.parametrize("mask", ["center", "random", "image"])
def test_inpaint_prints_log_p_and_writes_one_row_per_image(
    tmp_path: Path,
    trained_model: Trained,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    mask: str,
) -> None:
    out = tmp_path / "inpaint.png"
    spec = files["mask"] if mask == "image" else mask
    images = (files["real"], files["noise"])
    args = ("--mask", spec, "--iterations", 20, "--out", out)
    code, stdout, _ = run(capsys, "inpaint", "--ckpt", trained_model.checkpoint, *images, *args)
    assert code == 0
    # One row per image, columns masked input / completion / original.
    assert png_size(out) == reported(stdout, out) == grid_size(3, 2)
    assert stdout.count("log p(y)") == 2 and "bits/dim" in stdout
    pixels = png_pixels(out)
    for row, name in enumerate(("real", "noise")):
        original = np.asarray(Image.open(files[name]).convert("RGB"))
        assert np.array_equal(cell(pixels, row, 2), original)
        hidden = (cell(pixels, row, 0) == (255, 0, 255)).all(axis=-1)
        assert 0 < hidden.sum() < 28 * 28
        completion = cell(pixels, row, 1)
        assert np.array_equal(completion[~hidden], original[~hidden])


def test_score_ranks_a_real_image_above_noise(
    tmp_path: Path,
    trained_model: Trained,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "scores.json"
    images = (files["real"], files["noise"], files["camera"])
    code, stdout, _ = run(
        capsys, "score", "--ckpt", trained_model.checkpoint, *images, "--json", report
    )
    assert code == 0
    records = json.loads(report.read_text())["scores"]
    scores = {Path(r["image"]).name: r["bits_per_dim"] for r in records}
    assert "bits/dim" in stdout and all(f"{v:.4f}" in stdout for v in scores.values())
    assert scores["real.png"] < scores["noise.png"]
    assert set(scores) == {"real.png", "noise.png", "camera.png"}


def test_bad_files_exit_1_with_one_line(
    tmp_path: Path,
    trained_model: Trained,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = trained_model.checkpoint.read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) - 1000])
    ckpt = trained_model.checkpoint
    cases = [
        (("score", "--ckpt", ckpt, tmp_path / "missing.png"), "no such file"),
        (("score", "--ckpt", ckpt, tmp_path), "is a directory"),
        (("score", "--ckpt", ckpt, truncated), "not an image file"),
        (("sample", "--ckpt", tmp_path / "missing.ckpt"), "no such checkpoint file"),
        (("sample", "--ckpt", truncated), "truncated or corrupt"),
        (("sample", "--ckpt", files["real"]), "not a PyTorch checkpoint"),
        (("inpaint", "--ckpt", ckpt, files["real"], "--mask", "nothing.png"), "or a mask image"),
    ]
    for argv, reason in cases:
        code, stdout, stderr = run(capsys, *argv)
        assert code == 1, argv
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and reason in lines[0], (argv, stderr)
        assert lines[0].startswith("glowapp: error: ")
        assert "wrote" not in stdout


def test_usage_errors_exit_2(trained_model: Trained, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = trained_model.checkpoint
    for argv in (
        ("sample", "--ckpt"),  # --ckpt without its value (omitted: the shipped model)
        ("score", "--ckpt", ckpt),  # no images
        ("interpolate", "--ckpt", ckpt, "a.png"),  # one endpoint
        ("sample", "--ckpt", ckpt, "--num", "many"),  # not an integer
        ("sample", "--ckpt", ckpt, "--scale", "big"),  # neither auto nor an integer
        ("inpaint", "--ckpt", ckpt, "x.png", "--fraction", "half"),  # not a number
        ("demo", "--ckpt", ckpt, "--port", "70000"),
    ):
        code, _, stderr = run(capsys, *argv)
        assert code == 2, argv
        assert "usage: glowapp" in stderr
    code, stdout, _ = run(capsys, "inpaint", "--help")
    assert code == 0 and "--iterations" in stdout and "--step-size" in stdout


def test_help_lists_the_tools(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(capsys, "--help")
    assert code == 0
    for name in TOOLS:
        assert name in stdout and tool(name).summary in stdout
    assert set(TOOLS) >= {"sample", "interpolate", "inpaint", "score"}


def test_console_script(tmp_path: Path, trained_model: Trained) -> None:
    """The installed ``glowapp`` script runs a tool (and, for a bad value, says so on stderr)."""
    script = Path(sys.executable).with_name("glowapp")
    out = tmp_path / "samples.png"
    argv = ["sample", "--ckpt", str(trained_model.checkpoint), "--num", "4", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(script), *argv], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert png_size(out) == reported(done.stdout, out) == grid_size(2, 2)
    argv[argv.index("4")] = "0"
    done = subprocess.run(
        [str(script), *argv], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 1
    assert done.stderr == "glowapp: error: the number of samples must be at least 1, got 0\n"
