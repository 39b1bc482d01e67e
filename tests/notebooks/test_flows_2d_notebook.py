"""notebooks/flows_2d.ipynb runs end to end in a fresh kernel on one CPU thread, shows its
figures and tables, and writes nothing (its size keeps it to ~25 s on an idle 2-core machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.notebooks import run_notebook

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "flows_2d.ipynb"


def test_flows_2d_notebook_runs_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = run_notebook(NOTEBOOK, cwd=tmp_path, timeout=300)
    printed = "".join(run.texts)
    assert run.images == 4  # energies: densities, samples; data sets: densities, samples
    assert "fits: ∫ over the grid in" in printed
    for heading in ("KL(q‖p), nats", "test log p (nats)", "density, D=16 (s)"):
        assert heading in printed
    for flow in ("MAF (affine)", "MAF (spline)", "IAF", "RealNVP", "i-ResNet"):
        assert f"| {flow} |" in printed
    assert list(tmp_path.iterdir()) == []  # the kernel's working folder stays empty
