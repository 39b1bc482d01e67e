"""A class-conditional model's own Bayes classifier: how well the label it was given explains an
image, measured on real test images.

With a uniform class prior the posterior is ``p(y | x) ∝ p(x | y)``, so the model's
classification of an image is

    ŷ(x) = argmax_y log p(x | y),

evaluated at the bin centres of the pixels (no dequantisation noise). Only the flow's term
``log p_X(x | y)`` depends on ``y`` (the preprocessing log-det and the ``−D log K`` of the bins do
not), so the argmax is taken over :meth:`MultiScaleFlow.log_prob_per_class` of the preprocessed
images. An accuracy near chance says the label barely shapes the density.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from glowapp.evaluation.agreement import ClassAccuracy, ClassTally
from glowapp.generate.common import in_eval_mode

if TYPE_CHECKING:
    from glowapp.image_flow import ImageFlow

__all__ = ["bayes_accuracy"]


@in_eval_mode
@torch.no_grad()
def bayes_accuracy(
    model: ImageFlow,
    images: Tensor,
    labels: Tensor,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ClassAccuracy:
    """How often ``argmax_y log p(x | y)`` is the label, for images ``[N, C, H, W]`` with
    ``labels`` ``[N]``: per class and overall.

    Every class is scored in one call per batch, which may hold ``K`` copies of it: batches are
    ``⌈batch_size / K⌉`` images. ``progress(k)`` is called with the images classified so far.

    Raises:
        ValueError: an unconditional model, or no images.
    """
    num_classes = model.num_classes
    if not num_classes:
        raise ValueError("the Bayes classifier needs a class-conditional model")
    tally = ClassTally(num_classes)
    step = -(-batch_size // num_classes)
    for start in range(0, len(images), step):
        x, _ = model.preprocess.encode_images(
            model.check_images(images[start : start + step]), noise=False
        )
        predicted = model.flow.log_prob_per_class(x).argmax(dim=1)
        tally.update(predicted, labels[start : start + step])
        if progress is not None:
            progress(min(start + step, len(images)))
    return tally.result()
