"""Sample quality beside bits/dim: FID and KID (through torchmetrics), precision and recall of a
model's samples; class agreement and calibration rows.

- :mod:`~glowapp.evaluation.classifier`: the shipped Fashion-MNIST classifier, whose
  penultimate layer is the ``fashion-mnist`` feature space (and whose logits classify images);
- :mod:`~glowapp.evaluation.extractors`: the feature spaces by name (``fashion-mnist``,
  ``inception``), as torchmetrics custom ``feature`` modules;
- :mod:`~glowapp.evaluation.metrics`: FID, KID, precision and recall of image sets against one
  real set;
- :mod:`~glowapp.evaluation.manifold`: precision and recall through k-NN manifolds;
- :mod:`~glowapp.evaluation.agreement`: how often a classifier gives images their label (class
  agreement of samples, accuracy on real images);
- :mod:`~glowapp.evaluation.bayes`: a class-conditional model's own Bayes classifier;
- :mod:`~glowapp.evaluation.calibration`: real images blurred or noised, scored like samples;
- :mod:`~glowapp.evaluation.report`: a model's test bits/dim and every metric per temperature
  beside the reference and calibration rows (``glowapp evaluate``);
- :mod:`~glowapp.evaluation.data`: whole splits as tensors, samples as uint8 images.

Distances from different feature spaces are not comparable: each carries its extractor's label.
"""

from glowapp.evaluation.agreement import ClassAccuracy, ClassTally, class_accuracy
from glowapp.evaluation.bayes import bayes_accuracy
from glowapp.evaluation.calibration import (
    CALIBRATIONS,
    CalibrationRow,
    Degradation,
    calibration_rows,
)
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
from glowapp.evaluation.manifold import Manifold, PrecisionRecall, precision_recall
from glowapp.evaluation.metrics import Quality, SampleQuality, check_set_size
from glowapp.evaluation.report import (
    DEFAULT_TEMPERATURES,
    Evaluation,
    SampleRow,
    evaluate,
    sample_row,
    with_default_temperature,
)

__all__ = [
    "CALIBRATIONS",
    "CLASS_NAMES",
    "DEFAULT_TEMPERATURES",
    "FEATURES",
    "CalibrationRow",
    "ClassAccuracy",
    "ClassTally",
    "Degradation",
    "Evaluation",
    "FashionMNISTClassifier",
    "FeatureExtractor",
    "FeaturesUnavailableError",
    "Manifold",
    "PrecisionRecall",
    "Quality",
    "SampleQuality",
    "SampleRow",
    "bayes_accuracy",
    "calibration_rows",
    "check_set_size",
    "class_accuracy",
    "default_features",
    "evaluate",
    "feature_classifier_paths",
    "feature_extractor",
    "load_feature_classifier",
    "precision_recall",
    "sample_row",
    "with_default_temperature",
]
