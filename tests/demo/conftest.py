"""The demo tests' model (a tiny Glow fitted for a second), its Demo, and the files they upload.

``GLOWAPP_DEMO_SCREENSHOTS=docs`` uses the session's briefly trained model instead, so that the
screenshots ``test_page.py`` saves show clothes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers.demo_pages import SIDE
from helpers.generation import tiny_glow, write_checkpoint
from helpers.trained import fashion_mnist

import glowapp
from glowapp.demo.examples import write_example_sets, write_examples
from glowapp.demo.handlers import Demo

SCREENSHOTS = os.environ.get("GLOWAPP_DEMO_SCREENSHOTS")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A tiny Glow fitted for a few steps to Fashion-MNIST test images (about a second)."""
    if SCREENSHOTS:
        return request.getfixturevalue("trained_model").checkpoint
    directory = tmp_path_factory.mktemp("demo_model")
    data = fashion_mnist(directory / "data", batch_size=128)
    data.setup("test")
    images = next(iter(data.test_dataloader()))[0]
    module = tiny_glow(SIDE)
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as fast for this size, and immune to oversubscribed cores
    try:
        for _ in range(30):  # the first step also initialises ActNorm from the data
            loss = module.bits_per_dim(images).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return write_checkpoint(module, directory / "tiny.ckpt")


@pytest.fixture(scope="session")
def demo(checkpoint: Path) -> Demo:
    return Demo(glowapp.load(checkpoint))


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="session")
def example_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """The Manipulate tab's example sets: Fashion-MNIST test sneakers and ankle boots."""
    return write_example_sets(tmp_path_factory.mktemp("example_sets"), per_set=8)


@pytest.fixture(scope="session")
def not_an_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("uploads") / "notes.png"
    path.write_text("shopping list: milk, eggs\n")
    return path
