"""Sample quality beside bits/dim: FID and KID of a model's samples, through torchmetrics.

- :mod:`~glowapp.evaluation.classifier`: the shipped Fashion-MNIST classifier, whose
  penultimate layer is the ``fashion-mnist`` feature space (and whose logits classify images);
- :mod:`~glowapp.evaluation.extractors`: the feature spaces by name (``fashion-mnist``,
  ``inception``), as torchmetrics custom ``feature`` modules;
- :mod:`~glowapp.evaluation.metrics`: FID and KID of image sets against one real set;
- :mod:`~glowapp.evaluation.report`: a model's test bits/dim and FID/KID per temperature beside
  the reference row of real training images (``glowapp evaluate``);
- :mod:`~glowapp.evaluation.data`: whole splits as tensors, samples as uint8 images.

Distances from different feature spaces are not comparable: each carries its extractor's label.
"""

from glowapp.evaluation.classifier import (
    CLASS_NAMES,
    FashionMNISTClassifier,
    feature_classifier_paths,
    load_feature_classifier,
)
from glowapp.evaluation.extractors import (
    FEATURES,
    FeatureExtractor,
    FeaturesUnavailableError,
    default_features,
    feature_extractor,
)
from glowapp.evaluation.metrics import Quality, SampleQuality, check_set_size
from glowapp.evaluation.report import DEFAULT_TEMPERATURES, Evaluation, evaluate

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_TEMPERATURES",
    "FEATURES",
    "Evaluation",
    "FashionMNISTClassifier",
    "FeatureExtractor",
    "FeaturesUnavailableError",
    "Quality",
    "SampleQuality",
    "check_set_size",
    "default_features",
    "evaluate",
    "feature_classifier_paths",
    "feature_extractor",
    "load_feature_classifier",
]
