"""``glowapp sample --label`` and ``glowapp interpolate`` with class-conditional checkpoints, and
the one-line error for a label the checkpoint cannot take."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.bijections import perturb
from helpers.generation import tiny_glow, write_checkpoint
from PIL import Image

from glowapp.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def conditional_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 10-class Glow with a label-dependent top prior, saved as a checkpoint."""
    module = tiny_glow(num_classes=10)
    perturb(module.flow.top, 0.3)
    return write_checkpoint(module, tmp_path_factory.mktemp("conditional") / "model.ckpt")


def test_cli_samples_a_class(
    tmp_path: Path, conditional_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "class3.png"
    args = ["sample", "--ckpt", str(conditional_checkpoint), "--num", "4", "--device", "cpu"]
    code = main([*args, "--temperature", "0", "0.7", "--label", "3", "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "classes 3" in stdout
    with Image.open(out) as image:
        assert image.size == (4 * (4 * 30 + 2), 4 * (2 * 30 + 2))  # a row per temperature, x4
    code = main([*args, "--label", "10", "--out", str(out)])
    _, stderr = capsys.readouterr()
    assert code == 1
    assert "label 10 is out of range: this model has 10 classes, 0..9" in stderr


def test_cli_label_on_unconditional_checkpoint_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = write_checkpoint(tiny_glow(), tmp_path / "plain.ckpt")
    out = tmp_path / "samples.png"
    code = main(["sample", "--ckpt", str(checkpoint), "--label", "3", "--out", str(out)])
    _, stderr = capsys.readouterr()
    assert code == 1 and not out.exists()
    assert len(stderr.strip().splitlines()) == 1
    assert "error: " in stderr and "this model is unconditional" in stderr


def test_cli_interpolates_with_a_conditional_checkpoint(
    tmp_path: Path, conditional_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image_paths = []
    for i, value in enumerate((0, 200)):
        image_paths.append(tmp_path / f"{i}.png")
        Image.new("L", (28, 28), value).save(image_paths[-1])
    out = tmp_path / "interp.png"
    ckpt = str(conditional_checkpoint)
    code = main(["interpolate", *map(str, image_paths), "--ckpt", ckpt, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    with Image.open(out) as image:
        assert image.size[0] > image.size[1] > 28  # one row of frames
