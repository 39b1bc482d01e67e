"""The Fashion-MNIST feature classifier: shapes, input conventions, the shipped weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from torch import Tensor

from glowapp.evaluation import FashionMNISTClassifier, load_feature_classifier
from glowapp.evaluation.classifier import FEATURE_DIM, feature_classifier_paths


def test_features_and_logits_shapes() -> None:
    classifier = FashionMNISTClassifier().eval()
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    features = classifier.features(images)
    assert features.shape == (5, FEATURE_DIM) and features.dtype == torch.float32
    assert (features >= 0).all()  # the ReLU activations the logits layer reads
    assert classifier(images).shape == (5, 10)
    torch.testing.assert_close(classifier.head(features), classifier(images))


def test_uint8_and_unit_float_images_give_the_same_features() -> None:
    classifier = FashionMNISTClassifier().eval()
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    torch.testing.assert_close(
        classifier.features(images), classifier.features(images.float() / 255.0)
    )


def test_wrong_image_shape_is_one_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"takes images of shape \[B, 1, 28, 28\], got \(2, 3, 28, 28\)"
    ):
        FashionMNISTClassifier().features(torch.zeros(2, 3, 28, 28))


def test_shipped_weights_classify_held_out_test_images(real: dict[str, Tensor]) -> None:
    classifier = load_feature_classifier()
    with torch.no_grad():
        predicted = classifier(real["test"]).argmax(dim=1)
    accuracy = (predicted == real["test_labels"]).float().mean().item()
    assert accuracy >= 0.88, accuracy  # 512 test images; the full test split gives >= 0.90


def test_shipped_metadata_matches_the_weights() -> None:
    weights = next(path for path in feature_classifier_paths() if path.is_file())
    metadata = json.loads(weights.with_suffix(".json").read_text())
    assert metadata["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert metadata["test_accuracy"] >= 0.90 and metadata["test_images"] == 10_000
    assert metadata["train_images"] == 60_000
    assert weights.stat().st_size < 2 * 2**20


def test_missing_weights_name_where_they_were_looked_for(tmp_path: Path) -> None:
    missing = tmp_path / "none.pt"
    with pytest.raises(FileNotFoundError) as info:
        load_feature_classifier(missing)
    message = str(info.value)
    assert str(missing) in message and "scripts/train_feature_classifier.py" in message
    assert "\n" not in message


def test_a_file_that_is_not_the_weights_is_one_clear_error(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match="not the Fashion-MNIST feature classifier's weights"):
        load_feature_classifier(wrong)
