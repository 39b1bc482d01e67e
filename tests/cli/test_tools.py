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
from glowapp.tools import TOOLS

pytestmark = pytest.mark.usefixtures("single_thread")

CELL = 28 + 2  # a 28x28 image plus tile()'s 2-pixel padding


def grid_size(columns: int, rows: int) -> tuple[int, int]:
    """(width, height) of a tile() grid of 28x28 images."""
    return columns * CELL + 2, rows * CELL + 2


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


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


def test_sample_writes_one_row_block_per_temperature(
    tmp_path: Path, trained_model: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "samples.png"
    args = ("--num", 6, "--temperature", 0, 0.7, "--seed", 1, "--device", "cpu", "--out", out)
    code, stdout, _ = run(capsys, "sample", "--ckpt", trained_model.checkpoint, *args)
    assert code == 0
    assert png_size(out) == grid_size(3, 4)  # ⌈√6⌉ = 3 columns, 2 rows per temperature
    assert f"wrote {out}" in stdout


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
    assert png_size(out) == grid_size(5, 1)
    assert "converted RGB→L and resized 512x512→28x28" in stdout
    assert f"wrote {out}" in stdout


@pytest.mark.parametrize("mask", ["center", "random", "image"])
def test_inpaint_prints_log_p_and_writes_three_rows(
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
    assert png_size(out) == grid_size(2, 3)  # masked input / completion / original
    assert stdout.count("log p(y)") == 2 and "bits/dim" in stdout


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
        ("sample",),  # --ckpt missing
        ("score", "--ckpt", ckpt),  # no images
        ("interpolate", "--ckpt", ckpt, "a.png"),  # one endpoint
        ("sample", "--ckpt", ckpt, "--num", "many"),  # not an integer
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
    for name, tool in TOOLS.items():
        assert name in stdout and tool.summary in stdout
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
    assert png_size(out) == grid_size(2, 2)
    assert f"wrote {out}" in done.stdout
    argv[argv.index("4")] = "0"
    done = subprocess.run(
        [str(script), *argv], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 1
    assert done.stderr == "glowapp: error: the number of samples must be at least 1, got 0\n"
