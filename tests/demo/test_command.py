"""``glowapp demo``: its options, and what it says when the demo extra is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from glowapp.cli import main
from glowapp.tools import tool

pytestmark = pytest.mark.usefixtures("single_thread")


def test_demo_command_explains_how_to_install_gradio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], checkpoint: Path
) -> None:
    args = tool("demo").parser().parse_args(["--ckpt", str(checkpoint)])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    monkeypatch.delenv("GLOWAPP_DEBUG", raising=False)
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    monkeypatch.delitem(sys.modules, "glowapp.demo.app", raising=False)
    assert main(["demo", "--ckpt", str(checkpoint)]) == 1
    assert capsys.readouterr().err == (
        "glowapp: error: the web demo needs gradio, which is not installed: "
        "pip install 'glowapp[demo]'\n"
    )
