"""Fixtures of the data tests: DataModules that can only see a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from glowapp.data import FashionMNISTDataModule


@pytest.fixture
def fashion(tmp_path: Path) -> Callable[..., FashionMNISTDataModule]:
    """Build Fashion-MNIST modules reading ``tmp_path`` only (no system copy, no network)."""

    def build(**kwargs: Any) -> FashionMNISTDataModule:
        kwargs.setdefault("batch_size", 4)
        return FashionMNISTDataModule(root=str(tmp_path), download=False, system_dir="", **kwargs)

    return build
