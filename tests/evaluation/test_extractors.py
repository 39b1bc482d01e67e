"""The feature spaces by name: defaults, shape checks, and a clear line when one is missing."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from glowapp.evaluation import (
    FeaturesUnavailableError,
    default_features,
    extractors,
    feature_extractor,
)


def test_default_features_follow_the_image_shape() -> None:
    assert default_features((1, 28, 28)) == "fashion-mnist"
    assert default_features((3, 32, 32)) == "inception"
    assert default_features((1, 32, 32)) == "inception"


def test_fashion_mnist_features_are_labelled_and_sized() -> None:
    extractor = feature_extractor("fashion-mnist", (1, 28, 28))
    assert extractor.label == "fashion-mnist features" and extractor.key == "fashion_mnist"
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    assert extractor.network(images).shape == (4, extractor.num_features) == (4, 128)


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [
        ("fashion-mnist", (3, 32, 32), "take 1x28x28 images, but this model makes 3x32x32"),
        ("fashion-mnist", (1, 16, 16), "take 1x28x28 images, but this model makes 1x16x16"),
        ("inception", (2, 32, 32), "take 1- or 3-channel images, but this model makes 2x32x32"),
        ("vgg", (1, 28, 28), "unknown features 'vgg'; choose one of fashion-mnist, inception"),
    ],
)
def test_features_that_do_not_fit_are_one_clear_line(
    name: str, shape: tuple[int, int, int], expected: str
) -> None:
    with pytest.raises(ValueError) as info:
        feature_extractor(name, shape)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_inception_without_torch_fidelity_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(extractors, "torch_fidelity_installed", lambda: False)
    with pytest.raises(FeaturesUnavailableError) as info:
        feature_extractor("inception", (3, 32, 32), inception_cache=tmp_path)
    message = str(info.value)
    assert "pip install torch-fidelity" in message
    assert str(tmp_path / extractors.INCEPTION_URL.rsplit("/", 1)[1]) in message
    assert "fashion-mnist features work offline" in message and "\n" not in message


def test_inception_weights_that_cannot_be_downloaded_are_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def offline(url: str, destination: str, progress: bool = True) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(extractors, "torch_fidelity_installed", lambda: True)
    monkeypatch.setattr(extractors, "INCEPTION_URL", "https://example.org/weights-inception.pth")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(FeaturesUnavailableError) as info:
        feature_extractor("inception", (1, 28, 28), inception_cache=tmp_path)
    message = str(info.value)
    assert f"the InceptionV3 weights {tmp_path / 'weights-inception.pth'}" in message
    assert "the download failed: <urlopen error [Errno -3]" in message
    assert "network access" in message
    assert "torch-fidelity package" not in message and "\n" not in message
    assert not (tmp_path / "weights-inception.pth").exists()
