"""Executing a notebook in a fresh kernel (the venv's python), as a user would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient


@dataclass
class NotebookRun:
    """What a run printed (stream texts, in order) and how many PNG images it showed."""

    texts: list[str]
    images: int


def run_notebook(path: Path, cwd: Path, timeout: int) -> NotebookRun:
    """Execute every cell of the notebook at ``path`` with ``cwd`` as the kernel's working folder
    (each cell at most ``timeout`` seconds); raises ``CellExecutionError`` if a cell fails.

    The notebook file is not modified. Set environment variables (e.g. ``OMP_NUM_THREADS``) with
    ``monkeypatch.setenv`` before calling: the kernel inherits them.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    texts = [output["text"] for output in outputs if output["output_type"] == "stream"]
    images = sum("image/png" in output.get("data", {}) for output in outputs)
    return NotebookRun(texts, images)
