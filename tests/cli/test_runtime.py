"""glibc allocator tuning (:mod:`glowapp.runtime`), which the ``glowapp`` command applies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = (
    "import glowapp.runtime as r, sys; first = r.tune_malloc(); "
    "print(first, r.tune_malloc(), sys.platform)"
)


def run_probe(code: str, cwd: Path, **env: str) -> str:
    """Run ``code`` in a fresh interpreter in ``cwd`` (allocator settings are per process)."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_tune_malloc_applies_once_and_can_be_switched_off(tmp_path: Path) -> None:
    assert run_probe(PROBE, tmp_path, GLOWAPP_TUNE_MALLOC="1") == "True True linux"
    assert run_probe(PROBE, tmp_path, GLOWAPP_TUNE_MALLOC="0") == "False False linux"


def test_glowapp_command_tunes_the_allocator(tmp_path: Path) -> None:
    code = (
        "import glowapp.cli as c, glowapp.runtime as r; c.main(['--help']); "
        "print(r.tune_malloc.cache_info().currsize, r.tune_malloc())"
    )
    expected = f"1 {sys.platform.startswith('linux')}"
    assert run_probe(code, tmp_path).splitlines()[-1] == expected
