"""Shared pytest fixtures."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers.trained import Trained, train

from glowapp.data import FashionMNISTDataModule

REPO = Path(__file__).resolve().parents[1]
# Where `glowapp fit` writes with the configs' relative paths, and where a user's runs live.
USER_FOLDERS = ("checkpoints", "outputs", "lightning_logs", "wandb", "data")


def _user_files() -> dict[Path, int]:
    """``mtime_ns`` of every file and folder under the repository's :data:`USER_FOLDERS`."""
    found = {}
    for name in USER_FOLDERS:
        root = REPO / name
        for path in [root, *root.rglob("*")] if root.exists() else []:
            found[path] = path.lstat().st_mtime_ns
    return found


@pytest.fixture(scope="session", autouse=True)
def _working_tree_untouched() -> Iterator[None]:
    """Fail the session if any test created, changed or removed anything under the repository's
    checkpoints/, outputs/ (or lightning_logs/, wandb/, data/): tests work in temporary folders."""
    before = _user_files()
    yield
    after = _user_files()
    changed = sorted(
        str(p.relative_to(REPO))
        for p in before.keys() | after.keys()
        if before.get(p) != after.get(p)
    )
    if changed:
        pytest.fail(f"the tests wrote into the working tree: {', '.join(changed[:10])}")


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
    """A small Glow trained ~30 s on real Fashion-MNIST (``tests/helpers/trained.py``), once per session."""
    return train(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding real Fashion-MNIST (unpacked from the system copy), once per session;
    read-only for the tests."""
    root = tmp_path_factory.mktemp("fashion")
    FashionMNISTDataModule(root=str(root), download=False).prepare_data()
    return root
