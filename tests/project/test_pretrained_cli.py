"""The commands with a shipped model: by name (``--ckpt fashion-mnist``) or by default (no
``--ckpt``: one line says which), on the real checkpoints/fashion-mnist.ckpt."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glowapp import pretrained
from glowapp.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CKPT = REPO / "checkpoints" / "fashion-mnist.ckpt"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    monkeypatch.delenv("GLOWAPP_DEBUG", raising=False)


def test_sample_without_ckpt_uses_the_default_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tmp" / "x.png"
    assert main(["sample", "--num", "4", "--device", "cpu", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"using the shipped model fashion-mnist ({SHIPPED_CKPT}); pass --ckpt to choose another"
    )
    assert sum("shipped model" in line for line in lines) == 1
    assert lines[-1].startswith(f"wrote {out} ")
    with Image.open(out) as image:
        assert image.format == "PNG"


def test_the_line_shows_the_path_relative_to_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from argparse import Namespace

    from rich.console import Console

    from glowapp.tools.common import load_model

    monkeypatch.chdir(REPO)  # reads only
    loaded = load_model(
        Namespace(ckpt=None, device="cpu"), Console(highlight=False, soft_wrap=True)
    )
    assert loaded.path == SHIPPED_CKPT and loaded.label == "fashion-mnist"
    assert capsys.readouterr().out == (
        "using the shipped model fashion-mnist (checkpoints/fashion-mnist.ckpt); pass --ckpt to "
        "choose another\n"
    )


def test_sample_and_score_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "named.png"
    argv = ["sample", "--ckpt", "fashion-mnist", "--num", "4", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "shipped model" not in stdout and f"wrote {out}" in stdout
    image = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)).save(image)
    report = tmp_path / "scores.json"
    argv = [
        "score",
        "--ckpt",
        "fashion-mnist",
        str(image),
        "--device",
        "cpu",
        "--json",
        str(report),
    ]
    assert main(argv) == 0
    document = json.loads(report.read_text())
    assert document["checkpoint"] == str(SHIPPED_CKPT) and document["model"] == "fashion-mnist"
    assert math.isfinite(document["scores"][0]["bits_per_dim"])


def test_missing_shipped_files_are_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "src" / "glowapp"
    monkeypatch.setattr(pretrained, "PACKAGE_DIR", package)  # nothing shipped anywhere
    for argv, name in (
        (["sample"], "fashion-mnist"),
        (
            ["sample", "--ckpt", "fashion-mnist-conditional", "--label", "3"],
            "fashion-mnist-conditional",
        ),
        (["score", "--ckpt", "fashion-mnist", "a.png"], "fashion-mnist"),
    ):
        assert main(argv) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(f"glowapp: error: {name}: the shipped model's file {name}.ckpt is ")
        assert f"looked in {package / 'checkpoints'}, {package.parent / 'checkpoints'} " in err
        assert "GLOWAPP_CHECKPOINTS" in err and "fresh clone" in err
        assert err.count("\n") == 1
    assert main(["sample", "--ckpt", "fashion_mnist"]) == 1
    assert capsys.readouterr().err == (
        "glowapp: error: fashion_mnist: no such checkpoint file, nor the name of a shipped model "
        "(fashion-mnist, fashion-mnist-conditional, fashion-mnist-background, fashion-mnist-tarflow)\n"
    )


def test_help_names_the_shipped_models(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # argparse: no wrapping inside the names
    for command in ("sample", "interpolate", "inpaint", "manipulate", "score", "evaluate", "demo"):
        assert main([command, "--help"]) == 0
        help_text = " ".join(capsys.readouterr().out.split())
        assert "--ckpt PATH|NAME" in help_text
        assert (
            "or the name of a shipped model: fashion-mnist, fashion-mnist-conditional, "
            "fashion-mnist-background, fashion-mnist-tarflow (default: fashion-mnist)" in help_text
        )
