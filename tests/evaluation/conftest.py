"""Real Fashion-MNIST images and the shipped feature space, shared by the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import Tensor

from glowapp.data import FashionMNISTDataModule
from glowapp.evaluation import (
    FashionMNISTClassifier,
    FeatureExtractor,
    feature_extractor,
    load_feature_classifier,
)
from glowapp.evaluation.data import load_split

TEST_IMAGES = 512
TRAIN_IMAGES = 256


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding Fashion-MNIST (unpacked from the system copy; never downloaded)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def real(data_root: Path) -> dict[str, Tensor]:
    """The first 512 test images with their labels, and 256 training images (seeded order)."""
    data = FashionMNISTDataModule(
        root=str(data_root),
        val_fraction=0.0,
        train_limit=TRAIN_IMAGES,
        test_limit=TEST_IMAGES,
        download=False,
    )
    data.setup("fit")
    data.setup("test")
    test_images, test_labels = load_split(data.test_dataset)
    train_images, _ = load_split(data.train_dataset)
    return {"test": test_images, "test_labels": test_labels, "train": train_images}


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    """The fashion-mnist feature space, from the shipped classifier weights."""
    return feature_extractor("fashion-mnist", (1, 28, 28))


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_thread: None) -> None:
    """Every evaluation test runs on one intra-op thread (see ``single_thread``)."""


@pytest.fixture(scope="module")
def extractor_classifier() -> FashionMNISTClassifier:
    """The shipped Fashion-MNIST classifier, in eval mode."""
    return load_feature_classifier()
