"""What ``glowapp fit`` prints, as a user's terminal shows it (issue 21): a fresh fit into a
checkpoint folder that already holds a run is refused before the trainer is built, with ONE
``glowapp: error:`` line and nothing else (no seed, accelerator, tip or Lightning warning lines);
``--start_over true`` proceeds; and no fit shows Lightning's "💡 Tip: … litlogger" banner.

Each test runs the console entry point in a subprocess (``python -m glowapp.cli``), with the
user's warning filters (``PYTHONWARNINGS`` unset: a warning printed before the refusal would
count), so the captured streams are exactly what the terminal would show.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.fit_cli import tiny_fit_args

from glowapp.callbacks.checkpoint import refusal

pytestmark = pytest.mark.usefixtures("single_thread")


def glowapp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m glowapp.cli ARGS`` in ``cwd``, with the environment a user would have (no
    warning filters, no debug tracebacks), one OpenMP thread and offline loggers."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "GLOWAPP_DEBUG")}
    env |= {"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-m", "glowapp.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def earlier_run(folder: Path) -> Path:
    """A checkpoint folder holding ``last.ckpt`` (its content does not matter to the refusal)."""
    folder.mkdir(parents=True)
    last = folder / "last.ckpt"
    last.write_bytes(b"an earlier run's checkpoint")
    return last


def test_a_fresh_fit_into_a_folder_holding_a_run_prints_one_line(
    tmp_path: Path, fashion_root: Path
) -> None:
    last = earlier_run(tmp_path / "ckpt")
    result = glowapp("fit", *tiny_fit_args(tmp_path, fashion_root), cwd=tmp_path)
    expected = f"glowapp: error: {refusal(tmp_path / 'ckpt', [last])}"
    assert "already holds a run (last.ckpt)" in expected  # the message this test pins
    assert (result.returncode, result.stdout, result.stderr.splitlines()) == (1, "", [expected])
    assert last.read_bytes() == b"an earlier run's checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "tiny.yaml"]  # no logs either


def test_start_over_proceeds_without_the_litlogger_tip(tmp_path: Path, fashion_root: Path) -> None:
    """``--start_over true`` replaces the earlier run with a new one (4 steps)."""
    last = earlier_run(tmp_path / "ckpt")
    args = tiny_fit_args(tmp_path, fashion_root, "--start_over", "true")
    result = glowapp("fit", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "already holds a run" not in result.stderr
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4
    output = result.stdout + result.stderr
    assert "litlogger" not in output.lower() and "💡" not in output


def test_a_tiny_fit_shows_no_litlogger_tip(tmp_path: Path, fashion_root: Path) -> None:
    """Lightning logs its "💡 Tip: … try installing [litlogger] …" on every fit whose loggers
    include no LitLogger (here a CSVLogger); glowapp drops that line, and only that one: the
    other Lightning lines still show."""
    result = glowapp("fit", *tiny_fit_args(tmp_path, fashion_root), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    output = result.stdout + result.stderr
    assert "litlogger" not in output.lower() and "💡" not in output
    assert "GPU available: False" in output  # Lightning's other info lines are kept
