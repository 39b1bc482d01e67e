"""A small Fashion-MNIST classifier: its penultimate layer is the feature space of FID/KID, and
its logits say which class an image looks like (e.g. after a latent edit).

The weights ship in ``checkpoints/fashion_mnist_features.pt`` (a plain ``state_dict``, read
with ``weights_only=True``), trained on the Fashion-MNIST *training* split only by
``scripts/train_feature_classifier.py``; ``fashion_mnist_features.json`` beside it records its
test accuracy, training run and sha256.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from glowapp.images import as_float_images
from glowapp.pretrained import checkpoint_dirs

__all__ = [
    "CLASS_NAMES",
    "FEATURE_DIM",
    "IMAGE_SHAPE",
    "WEIGHTS_NAME",
    "FashionMNISTClassifier",
    "feature_classifier_paths",
    "load_feature_classifier",
]

IMAGE_SHAPE = (1, 28, 28)
"""``(C, H, W)`` of the images the classifier takes."""

FEATURE_DIM = 128
"""Width of the penultimate layer: the dimension of the FID/KID feature space."""

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST's labels 0..9."""

WEIGHTS_NAME = "fashion_mnist_features.pt"
"""File name of the shipped weights (and, with ``.json``, of their metadata)."""


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (same padding) → BatchNorm → ReLU → 2×2 max-pool: ``[B, C, H, W]`` →
    ``[B, C', ⌊H/2⌋, ⌊W/2⌋]``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class FashionMNISTClassifier(nn.Module):
    """A three-block CNN for 1×28×28 images: features ``[B, 128]``, logits ``[B, 10]``.

    ``[B, 1, 28, 28]`` → conv blocks of 16, 32, 64 channels (each halving the side: 14, 7, 3) →
    flatten ``[B, 576]`` → linear → ReLU = :meth:`features` ``[B, 128]`` → (dropout in
    training) → linear = logits ``[B, 10]``. About 99k parameters (0.4 MB of float32).

    Inputs are uint8 ``0..255`` or float ``[0, 1]`` images (as the data sets and the generation
    functions give them), mapped to ``[-1, 1]`` inside.
    """

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        self.body = nn.Sequential(_block(1, 16), _block(16, 32), _block(32, 64), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(64 * 3 * 3, FEATURE_DIM), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(FEATURE_DIM, len(CLASS_NAMES)))

    def features(self, images: Tensor) -> Tensor:
        """Penultimate-layer activations ``[B, 128]`` (non-negative) of images ``[B, 1, 28, 28]``.

        Raises:
            ValueError: images of another shape.
        """
        if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(
                "the Fashion-MNIST classifier takes images of shape [B, 1, 28, 28], got "
                f"{tuple(images.shape)}"
            )
        x = as_float_images(images.to(self.head[1].weight.device)) * 2.0 - 1.0
        return self.embed(self.body(x))

    def forward(self, images: Tensor) -> Tensor:
        """Class logits ``[B, 10]`` (see :data:`CLASS_NAMES`) of images ``[B, 1, 28, 28]``."""
        return self.head(self.features(images))


def feature_classifier_paths() -> list[Path]:
    """Where :func:`load_feature_classifier` looks for the shipped weights, in order: the places
    of the shipped models (:func:`glowapp.pretrained.checkpoint_dirs`: ``$GLOWAPP_CHECKPOINTS``,
    the installed package's ``glowapp/checkpoints/``, the source tree's ``checkpoints/``)."""
    return [folder / WEIGHTS_NAME for folder in checkpoint_dirs()]


def load_feature_classifier(
    path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> FashionMNISTClassifier:
    """The trained classifier on ``device``, in eval mode, from ``path`` or the shipped file.

    The file is a ``state_dict`` read with ``weights_only=True`` (it cannot run code).

    Raises:
        FileNotFoundError: no weights at ``path``, or none shipped (naming every place looked
            in, and the script that trains them).
        ValueError: the file is not this classifier's weights.
    """
    candidates = [Path(path)] if path is not None else feature_classifier_paths()
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        looked = ", ".join(str(p) for p in candidates)
        raise FileNotFoundError(
            f"the Fashion-MNIST feature classifier's weights are missing (looked in {looked}); "
            "train them with `python scripts/train_feature_classifier.py` (about 10 CPU minutes)"
        )
    classifier = FashionMNISTClassifier()
    try:
        state = torch.load(io.BytesIO(found.read_bytes()), map_location="cpu", weights_only=True)
        classifier.load_state_dict(state)
    except Exception as err:  # torch.load and load_state_dict raise many types for bad files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{found}: not the Fashion-MNIST feature classifier's weights ({reason}); retrain "
            "them with `python scripts/train_feature_classifier.py`"
        ) from None
    return classifier.to(device).eval()
