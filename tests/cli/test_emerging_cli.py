"""Glow with emerging convolutions trains from its config and works in every tool."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.fit_cli import CONFIGS, tiny_overlay

from glowapp.cli import main
from glowapp.flows import EmergingConv2d
from glowapp.generate import load_module
from glowapp.images import save_png

pytestmark = pytest.mark.usefixtures("single_thread")


def test_emerging_config_trains_and_every_tool_uses_it(tmp_path: Path, fashion_root: Path) -> None:
    config = ["--config", str(CONFIGS / "glow_fashion_mnist_emerging.yaml")]
    config += ["--config", str(tiny_overlay(tmp_path, fashion_root))]  # keeps the permutation
    assert main(["fit", *config]) == 0
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    module = load_module(ckpt)
    assert module.hparams["flow"]["init_args"]["permutation"] == "emerging"
    assert any(isinstance(m, EmergingConv2d) for m in module.modules())
    images = [tmp_path / f"img{i}.png" for i in range(2)]
    for i, path in enumerate(images):
        save_png(torch.full((1, 28, 28), i / 2), path)
    a, b = (str(p) for p in images)
    tools = {
        "sample": ["--num", "2", "--temperature", "0.7"],
        "interpolate": [a, b, "--steps", "3"],
        "inpaint": [a, "--mask", "center", "--iterations", "3"],
        "manipulate": [a, "--positive", a, "--negative", b, "--alpha", "0", "1"],
    }
    for tool, args in tools.items():
        out = tmp_path / f"{tool}.png"
        assert main([tool, "--ckpt", str(ckpt), *args, "--out", str(out)]) == 0, tool
        assert out.stat().st_size > 0, tool
    assert main(["score", "--ckpt", str(ckpt), a, b]) == 0
