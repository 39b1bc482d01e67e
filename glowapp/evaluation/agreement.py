"""How often a classifier assigns images to their label: per class and overall.

For real test images that is the classifier's accuracy (the ceiling a model's samples can reach
in its eyes); for a class-conditional model's samples drawn for class ``k``, the *class
agreement*

    agreement_k = |{i : y_i = k, argmax_c f_c(x_i) = k}| / |{i : y_i = k}|,

and overall the share of all images whose predicted class is their label (the mean of the
per-class shares when every class has as many images, as the evaluation draws them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ClassAccuracy", "ClassTally", "class_accuracy", "predict", "tallied"]


@dataclass(frozen=True)
class ClassAccuracy:
    """Share of images given their label: ``overall``, and ``per_class[k]`` over the images of
    label ``k`` (NaN for a class without images)."""

    overall: float
    per_class: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{"overall": float, "per_class": [float | None, …]}`` (index = label; None for a
        class without images, so the JSON stays standard)."""
        per_class = [None if math.isnan(share) else share for share in self.per_class]
        return {"overall": self.overall, "per_class": per_class}


class ClassTally:
    """Counts, per label, the images a prediction gives their label; :meth:`result` reads it."""

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"a class tally needs at least one class, got {num_classes}")
        self.total = torch.zeros(num_classes, dtype=torch.long)
        self.correct = torch.zeros(num_classes, dtype=torch.long)

    def update(self, predicted: Tensor, labels: Tensor) -> None:
        """Add predicted classes ``[b]`` of images whose labels are ``labels`` ``[b]``."""
        labels = labels.cpu()
        hits = predicted.cpu() == labels
        size = len(self.total)
        self.total += torch.bincount(labels, minlength=size)
        self.correct += torch.bincount(labels[hits], minlength=size)

    def result(self) -> ClassAccuracy:
        """The shares counted so far.

        Raises:
            ValueError: nothing was counted.
        """
        seen = int(self.total.sum())
        if not seen:
            raise ValueError("no images were classified")
        per_class = self.correct.double() / self.total.double()  # 0 / 0 = NaN: no images
        return ClassAccuracy(int(self.correct.sum()) / seen, tuple(map(float, per_class)))


@torch.no_grad()
def predict(classifier: nn.Module, images: Tensor) -> Tensor:
    """The classifier's most likely class ``[B]`` of images ``[B, C, H, W]``."""
    return classifier(images).argmax(dim=1)


def tallied(
    batches: Iterable[Tensor], labels: Tensor, classifier: nn.Module, tally: ClassTally
) -> Iterator[Tensor]:
    """Pass ``batches`` through unchanged, classifying each on the way: image ``i`` (counted over
    all batches) has label ``labels[i]``. Lets one decoding pass feed both the distances and the
    class agreement."""
    start = 0
    for batch in batches:
        tally.update(predict(classifier, batch), labels[start : start + len(batch)])
        start += len(batch)
        yield batch


def class_accuracy(
    classifier: nn.Module, images: Tensor, labels: Tensor, num_classes: int, batch_size: int = 500
) -> ClassAccuracy:
    """How often ``classifier`` (images → logits ``[B, K]``) predicts ``labels`` ``[N]`` for
    ``images`` ``[N, C, H, W]``: per class and overall."""
    tally = ClassTally(num_classes)
    for batch, batch_labels in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        tally.update(predict(classifier, batch), batch_labels)
    return tally.result()
