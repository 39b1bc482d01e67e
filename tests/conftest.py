"""Shared pytest fixtures."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import torch
from trained import Trained, train


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed every RNG before each test so results do not depend on test order."""
    random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """One intra-op thread for the module: as fast on tiny tensors, and immune to oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A small Glow trained ~30 s on real Fashion-MNIST (``tests/trained.py``), once per session."""
    return train(tmp_path_factory.mktemp("trained"))
