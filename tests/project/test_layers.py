"""The import layering lasts: import-linter's contracts in pyproject.toml hold (imports only go
down; only training and the CLI import Lightning), and a tool's start-up imports no Lightning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_generation_command_imports_neither_lightning_nor_torchvision() -> None:
    """What `glowapp sample` imports before it runs (torchvision costs ~2 s of start-up)."""
    code = (
        "import sys; import glowapp.cli, glowapp.tools; glowapp.tools.tool('sample'); "
        "import glowapp.loading; "
        "bad = sorted(m for m in ('pytorch_lightning', 'lightning_fabric', 'torchvision') "
        "if m in sys.modules); assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
