"""Every CLI test runs in its own temporary folder, so relative output paths (``outputs/``,
``checkpoints/``, ``lightning_logs/``) can never land in the working tree."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
