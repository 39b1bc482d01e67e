"""Class agreement and classifier accuracy: per-class and overall shares counted against known
predictions, batches passed through unchanged, and the shipped classifier on real test images."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from glowapp.evaluation import ClassTally, FashionMNISTClassifier, class_accuracy
from glowapp.evaluation.agreement import tallied


class PixelReader(nn.Module):
    """A stand-in classifier: "predicts" the class written in each image's top-left pixel."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, images: Tensor) -> Tensor:
        return nn.functional.one_hot(images[:, 0, 0, 0].long(), self.num_classes).float()


def images_showing(classes: list[int]) -> Tensor:
    """uint8 images ``[n, 1, 4, 4]`` whose top-left pixel holds the given class."""
    images = torch.zeros(len(classes), 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.tensor(classes, dtype=torch.uint8)
    return images


def test_per_class_and_overall_shares() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    shown = images_showing([0, 0, 0, 1, 1, 1, 0, 0])  # class 0: 3/4, class 1: 2/2, class 2: 0/2
    result = class_accuracy(PixelReader(3), shown, labels, num_classes=3, batch_size=3)
    assert result.per_class == (0.75, 1.0, 0.0)
    assert result.overall == 5 / 8
    assert result.as_dict() == {"overall": 5 / 8, "per_class": [0.75, 1.0, 0.0]}


def test_a_class_without_images_is_nan_and_leaves_the_overall_share_alone() -> None:
    tally = ClassTally(3)
    tally.update(torch.tensor([0, 2]), torch.tensor([0, 0]))
    result = tally.result()
    assert result.per_class[0] == 0.5 and all(math.isnan(s) for s in result.per_class[1:])
    assert result.overall == 0.5
    assert result.as_dict() == {"overall": 0.5, "per_class": [0.5, None, None]}


def test_nothing_counted_is_refused() -> None:
    with pytest.raises(ValueError, match="no images were classified"):
        ClassTally(10).result()


def test_tallied_batches_pass_through_unchanged_and_are_all_counted() -> None:
    labels = torch.arange(10) % 5  # every class in turn, as the evaluation draws samples
    shown = images_showing([3] * 10)  # a "model" whose every sample looks like class 3
    tally = ClassTally(5)
    batches = list(tallied(shown.split(4), labels, PixelReader(5), tally))
    assert torch.equal(torch.cat(batches), shown)
    result = tally.result()
    assert result.per_class == (0.0, 0.0, 0.0, 1.0, 0.0) and result.overall == 0.2


def test_the_shipped_classifier_on_real_test_images(
    extractor_classifier: FashionMNISTClassifier, real: dict[str, Tensor]
) -> None:
    result = class_accuracy(extractor_classifier, real["test"], real["test_labels"], 10)
    assert 0.85 < result.overall <= 1.0  # 0.9185 over all 10,000 test images
    counts = torch.bincount(real["test_labels"], minlength=10).double()
    weighted = (torch.tensor(result.per_class, dtype=torch.float64) * counts).sum() / counts.sum()
    assert float(weighted) == pytest.approx(result.overall)
