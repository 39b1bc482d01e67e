"""The playground's tests run on one intra-op thread: as fast on 2-D points, and immune to
oversubscription."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_thread: None) -> None:
    """Every playground test runs on one intra-op thread (see ``single_thread``)."""
