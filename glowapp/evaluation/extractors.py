"""The feature spaces FID and KID are measured in, by name: ``fashion-mnist`` and ``inception``.

Each :class:`FeatureExtractor` holds a network that maps uint8 images ``[B, C, H, W]`` to
features ``[B, F]`` and carries ``num_features`` — what torchmetrics'
``FrechetInceptionDistance`` / ``KernelInceptionDistance`` expect of a custom ``feature``
module (given one, they pass the images through unchanged, so ``normalize`` plays no part).

- ``fashion-mnist``: the penultimate layer (128-d) of the shipped Fashion-MNIST classifier
  (:mod:`glowapp.evaluation.classifier`); for 1×28×28 images only; works offline.
- ``inception``: torch-fidelity's InceptionV3 pool features (2048-d), the ones papers report,
  for 1- or 3-channel images of any size (resized to 299×299 inside; grey images are repeated
  over the three channels). Needs the ``torch-fidelity`` package and its weights file.

Distances in one space are not comparable with distances in the other: every number printed or
logged carries its extractor's :attr:`FeatureExtractor.label`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from glowapp.evaluation.classifier import (
    FEATURE_DIM,
    IMAGE_SHAPE,
    FashionMNISTClassifier,
    load_feature_classifier,
)

__all__ = [
    "FEATURES",
    "INCEPTION_URL",
    "FeatureExtractor",
    "FeaturesUnavailableError",
    "default_features",
    "feature_extractor",
]

FEATURES = ("fashion-mnist", "inception")
"""The names :func:`feature_extractor` accepts."""

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
"""Where torch-fidelity's InceptionV3 weights come from (cached under torch.hub's folder)."""

_INCEPTION_DIM = 2048


class FeaturesUnavailableError(ValueError):
    """A feature extractor whose code or weights are not on this machine (and could not be got)."""


class ClassifierFeatures(nn.Module):
    """The Fashion-MNIST classifier's features ``[B, 128]`` of images ``[B, 1, 28, 28]``."""

    num_features = FEATURE_DIM

    def __init__(self, classifier: FashionMNISTClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.features(images)


class InceptionFeatures(nn.Module):
    """InceptionV3 pool features ``[B, 2048]`` of uint8 images ``[B, 1 or 3, H, W]``."""

    num_features = _INCEPTION_DIM

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        self.inception = inception

    def forward(self, images: Tensor) -> Tensor:
        rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images  # (B, 3, H, W)
        return self.inception(rgb)


@dataclass(frozen=True)
class FeatureExtractor:
    """A named feature space: ``network`` (uint8 ``[B, C, H, W]`` → ``[B, F]``, in eval mode).

    ``label`` names it wherever a distance is shown, e.g. ``"fashion-mnist features"``;
    ``key`` in log keys, e.g. ``val/fid_fashion_mnist``.
    """

    name: str
    network: nn.Module

    @property
    def label(self) -> str:
        return f"{self.name} features"

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    @property
    def num_features(self) -> int:
        return int(self.network.num_features)


def default_features(image_shape: tuple[int, int, int]) -> str:
    """``fashion-mnist`` for 1×28×28 images (works offline), else ``inception``."""
    return "fashion-mnist" if tuple(image_shape) == IMAGE_SHAPE else "inception"


def feature_extractor(
    name: str,
    image_shape: tuple[int, int, int],
    device: str | torch.device = "cpu",
    inception_cache: Path | None = None,
) -> FeatureExtractor:
    """The feature space ``name`` for images of shape ``image_shape`` ``(C, H, W)``, on ``device``.

    ``inception_cache``: folder of the InceptionV3 weights (default: torch.hub's
    ``checkpoints`` folder, where torch-fidelity keeps them).

    Raises:
        ValueError: an unknown name, or an extractor that does not take these images.
        FeaturesUnavailableError: the inception features' package or weights are missing.
        FileNotFoundError: the Fashion-MNIST classifier's weights are missing.
    """
    if name not in FEATURES:
        raise ValueError(f"unknown features {name!r}; choose one of {', '.join(FEATURES)}")
    shape = "x".join(map(str, image_shape))
    if name == "fashion-mnist":
        if tuple(image_shape) != IMAGE_SHAPE:
            raise ValueError(
                f"the fashion-mnist features take 1x28x28 images, but this model makes {shape} "
                "images; use the inception features instead"
            )
        network: nn.Module = ClassifierFeatures(load_feature_classifier())
    else:
        if image_shape[0] not in (1, 3):
            raise ValueError(
                f"the inception features take 1- or 3-channel images, but this model makes "
                f"{shape} images"
            )
        network = InceptionFeatures(_inception(inception_cache))
    return FeatureExtractor(name, network.to(device).eval())


def torch_fidelity_installed() -> bool:
    """Whether the ``torch-fidelity`` package (torchmetrics' InceptionV3) can be imported."""
    return importlib.util.find_spec("torch_fidelity") is not None


def _inception(cache: Path | None) -> nn.Module:
    """torchmetrics' InceptionV3 (torch-fidelity's port), its weights downloaded once into
    ``cache`` if they are not there yet."""
    cache = Path(torch.hub.get_dir()) / "checkpoints" if cache is None else cache
    weights = cache / INCEPTION_URL.rsplit("/", 1)[1]
    installed = torch_fidelity_installed()
    missing = [] if installed else ["the torch-fidelity package (pip install torch-fidelity)"]
    if not weights.is_file():
        failure = ""
        if installed:  # what torch-fidelity would do, with a clear message when it cannot
            try:
                cache.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(INCEPTION_URL, str(weights), progress=False)
            except Exception as err:  # URLError, HTTPError, OSError, timeouts...
                reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                failure = f"; the download failed: {reason}"
        if not weights.is_file():
            missing.append(
                f"the InceptionV3 weights {weights} (from {INCEPTION_URL}{failure}; run once "
                "with network access, or put the file there)"
            )
    if missing:
        raise FeaturesUnavailableError(
            f"the inception features need {' and '.join(missing)}; the fashion-mnist features "
            "work offline for 1x28x28 images"
        )
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(
        name="inception-v3-compat",
        features_list=[str(_INCEPTION_DIM)],
        feature_extractor_weights_path=str(weights),
    )
