"""The model's own Bayes classifier: argmax over labels of log p(x | y), the same as the label
with the lowest bin-centre bits/dim, in batches of any size, for both conditioning modes."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import perturb
from helpers.generation import tiny_glow
from torch import Tensor

from glowapp.evaluation import ClassTally, bayes_accuracy
from glowapp.image_flow import ImageFlow

K = 3


def conditional(embedding: int, scale: float) -> ImageFlow:
    """A tiny 3-class Glow whose densities differ by label: legacy (label in the top prior only,
    ``embedding = 0``) or conditioned throughout; its parameters perturbed by ``scale`` so the
    label matters."""
    model = tiny_glow(num_classes=K, label_embedding_dim=embedding).model
    perturb(model.flow, scale)
    return model.eval()


def lowest_bits(model: ImageFlow, images: Tensor) -> Tensor:
    """The label of lowest bits/dim at the bin centres, one ``bits_per_dim`` call per label."""
    with torch.no_grad():
        bits = [
            model.bits_per_dim(images, noise=False, labels=torch.full((len(images),), k))
            for k in range(K)
        ]
    return torch.stack(bits, dim=1).argmin(dim=1)


@pytest.mark.parametrize(("embedding", "scale"), [(0, 0.05), (4, 0.1)])
def test_the_bayes_classifier_picks_the_label_of_lowest_bits_per_dim(
    embedding: int, scale: float, real: dict[str, Tensor]
) -> None:
    model = conditional(embedding, scale)
    images, labels = real["test"][:24], real["test_labels"][:24] % K
    predicted = lowest_bits(model, images)
    assert len(set(predicted.tolist())) > 1, "the label should matter to this model"
    expected = ClassTally(K)
    expected.update(predicted, labels)
    calls = []
    result = bayes_accuracy(model, images, labels, batch_size=7, progress=calls.append)
    assert result == expected.result()
    assert calls == [3, 6, 9, 12, 15, 18, 21, 24]  # ⌈7 / 3⌉ images per call
    assert bayes_accuracy(model, images, labels, batch_size=100) == result


def test_an_unconditional_model_has_no_bayes_classifier(real: dict[str, Tensor]) -> None:
    with pytest.raises(ValueError, match="needs a class-conditional model"):
        bayes_accuracy(tiny_glow().model, real["test"][:4], real["test_labels"][:4])
