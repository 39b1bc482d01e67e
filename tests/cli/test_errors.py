"""A bad value given to a generation command is checked once, by the glowapp.generate function
that uses it, and its message reaches the user unchanged: ``glowapp: error: <message>``, exit 1.

Each case runs the command and calls the function it reaches with the same value; the two
messages must be identical, so a check repeated (and worded differently) in the CLI would fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.generation import error_message, tiny_glow, write_checkpoint
from PIL import Image

from glowapp.cli import main
from glowapp.devices import resolve_device
from glowapp.generate import (
    class_labels,
    inpaint,
    interpolate,
    make_mask,
    sample_grid,
    score,
)
from glowapp.images import display_scale, tile
from glowapp.masks import resolve_mask
from glowapp.module import GlowModule

pytestmark = pytest.mark.usefixtures("single_thread")

IMAGES = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
MASK = make_mask("center", (28, 28))

#: (command line after ``--ckpt P``, the call of glowapp's own function with the same value).
#: ``a.png`` and ``b.png`` are black 28x28 images in the working directory.
CASES: dict[str, tuple[list[str], Callable[[GlowModule], Any]]] = {
    "num": (["sample", "--num", "0"], lambda m: sample_grid(m, [0.7], 0)),
    "temperature": (
        ["sample", "--temperature", "0.5", "-1"],
        lambda m: sample_grid(m, [0.5, -1.0], 4),
    ),
    "temperature nan": (
        ["sample", "--temperature", "nan"],
        lambda m: sample_grid(m, [float("nan")], 4),
    ),
    "seed": (["sample", "--seed", str(2**64)], lambda m: sample_grid(m, [0.7], 4, seed=2**64)),
    "label": (["sample", "--num", "4", "--label", "3"], lambda m: class_labels(m, [3], 4)),
    "nrow": (["sample", "--num", "4", "--nrow", "0"], lambda m: tile([IMAGES], 0)),
    "scale": (["sample", "--num", "4", "--scale", "0"], lambda m: display_scale((28, 28), 0)),
    "device": (["sample", "--device", "tpu"], lambda m: resolve_device("tpu")),
    "steps": (
        ["interpolate", "a.png", "b.png", "--steps", "1"],
        lambda m: interpolate(m, IMAGES, IMAGES, steps=1),
    ),
    "mode": (
        ["interpolate", "a.png", "b.png", "--mode", "cubic"],
        lambda m: interpolate(m, IMAGES, IMAGES, mode="cubic"),
    ),
    "mask": (["inpaint", "a.png", "--mask", "circle"], lambda m: resolve_mask("circle", (28, 28))),
    "fraction": (
        ["inpaint", "a.png", "--mask", "left", "--fraction", "2"],
        lambda m: resolve_mask("left", (28, 28), 2.0),
    ),
    "iterations": (
        ["inpaint", "a.png", "--iterations", "-1"],
        lambda m: inpaint(m, IMAGES, MASK, iterations=-1),
    ),
    "step size": (
        ["inpaint", "a.png", "--step-size", "-0.5"],
        lambda m: inpaint(m, IMAGES, MASK, step_size=-0.5),
    ),
    "tolerance": (
        ["inpaint", "a.png", "--tolerance", "-1"],
        lambda m: inpaint(m, IMAGES, MASK, tolerance=-1.0),
    ),
    "noise samples": (
        ["score", "a.png", "--noise-samples", "-2"],
        lambda m: score(m, IMAGES, noise_samples=-2),
    ),
}


@pytest.fixture(scope="module")
def module() -> GlowModule:
    return tiny_glow().eval()


@pytest.fixture
def workdir(tmp_path: Path, module: GlowModule, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the checkpoint and two black images; tracebacks off."""
    monkeypatch.delenv("GLOWAPP_DEBUG", raising=False)
    write_checkpoint(module, tmp_path / "tiny.ckpt")
    for name in ("a.png", "b.png"):
        Image.new("L", (28, 28)).save(tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("case", list(CASES))
def test_the_functions_error_reaches_the_user_unchanged(
    case: str, workdir: Path, module: GlowModule, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, call = CASES[case]
    expected = error_message(call, module)
    command, *options = argv
    code = main([command, "--ckpt", "tiny.ckpt", *options])
    out, err = capsys.readouterr()
    assert (code, err) == (1, f"glowapp: error: {expected}\n")
    assert "wrote" not in out
    assert sorted(p.name for p in workdir.iterdir()) == ["a.png", "b.png", "tiny.ckpt"]
