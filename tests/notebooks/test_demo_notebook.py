"""notebooks/demo.ipynb runs end to end in a fresh kernel (the venv's python), in under 90 s.

The kernel works in a temporary folder (the checkpoint and data come from environment
variables), so whatever the notebook writes stays out of the working tree.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest
from helpers.trained import Trained
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "demo.ipynb"


def execute(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, **env: str
) -> tuple[list[str], int, float]:
    """Run the notebook in ``workdir`` with ``env`` set; returns its printed text, image count
    and run time.

    A first cell printing ``sys.executable`` is prepended, to check which python the kernel is.
    """
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: immune to oversubscription
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=90,
        resources={"metadata": {"path": str(workdir)}},
    )
    start = time.monotonic()
    client.execute()  # raises CellExecutionError if any cell fails
    elapsed = time.monotonic() - start
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    texts = [output["text"] for output in outputs if output["output_type"] == "stream"]
    images = sum("image/png" in output.get("data", {}) for output in outputs)
    return texts, images, elapsed


def test_demo_notebook_with_a_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trained_model: Trained
) -> None:
    texts, images, elapsed = execute(
        monkeypatch,
        tmp_path,
        GLOWAPP_CHECKPOINT=str(trained_model.checkpoint),
        GLOWAPP_DATA_ROOT=str(trained_model.data_root),
    )
    assert Path(texts[0].strip()) == Path(sys.executable)  # the kernel runs the venv's python
    printed = "".join(texts)
    assert f"loaded {trained_model.checkpoint}" in printed
    assert "astronaut: converted RGB→L and resized 512x512→28x28" in printed
    assert "log p(y):" in printed
    assert "alpha = 0 reproduces the input: True" in printed
    assert images == 4  # samples, interpolation, inpainting, manipulation
    assert elapsed < 90


def test_demo_notebook_trains_a_tiny_model_without_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, trained_model: Trained
) -> None:
    texts, images, _ = execute(
        monkeypatch,
        tmp_path,
        GLOWAPP_CHECKPOINT=str(tmp_path / "missing.ckpt"),
        GLOWAPP_DATA_ROOT=str(trained_model.data_root),
        GLOWAPP_DEMO_TRAIN_STEPS="10",
    )
    assert "not found: training a tiny model for 10 steps" in "".join(texts)
    assert images == 4
