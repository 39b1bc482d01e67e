"""On the shipped Fashion-MNIST Glow, where the numbers matter: raw likelihood fails on MNIST (the
lesson), input complexity and orientation do not. Small sets, generous margins: any reasonably
trained Fashion-MNIST Glow passes."""

from __future__ import annotations

from pathlib import Path

import pytest

import glowapp
from glowapp.data.offline import load_image_set
from glowapp.ood import Detector, auroc


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the named sets are unpacked (this module's fixtures run before the per-test
    working folder is set, so never the repository's data/)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def detector(data_root: Path) -> Detector:
    model = glowapp.load("fashion-mnist")
    reference = load_image_set("fashion-mnist:test[:20]", model.image_shape, root=data_root)
    return Detector(model, ["likelihood", "orientation", "combined"]).fit_reference(
        reference.images
    )


def test_likelihood_fails_on_mnist_and_combined_does_not(detector: Detector) -> None:
    mnist = detector.score(load_image_set("mnist-5k[:12]", detector.model.image_shape).images)
    reference = detector.reference_scores
    assert auroc(reference["likelihood"], mnist["likelihood"]) < 0.5  # MNIST looks *more* likely
    assert auroc(reference["combined"], mnist["combined"]) > 0.85


def test_orientation_tells_upside_down_clothes(detector: Detector, data_root: Path) -> None:
    spec = "fashion-mnist:test[5000:5012]@vflip"
    flipped = detector.score(
        load_image_set(spec, detector.model.image_shape, root=data_root).images
    )
    assert auroc(detector.reference_scores["orientation"], flipped["orientation"]) > 0.85
