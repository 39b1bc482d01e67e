"""Evaluate a model: test bits/dim, and FID/KID, precision and recall of its samples at several
temperatures, beside the reference row of real training images (the floor no model can beat)
and calibration rows of degraded training images (what a distance means in this feature space).
For a class-conditional model also the class agreement of its samples, the classifier's
accuracy on the real test images (the ceiling of that agreement), and the model's own Bayes
classifier.

The samples are :mod:`glowapp.generate`'s: one noise draw ``ε`` from ``seed`` decoded at each
temperature ``T`` as ``decode(T · ε)`` (every class in turn for a class-conditional model, so
each class gets ``num_samples / K`` samples), so rows differ only by temperature, exactly as in
``glowapp sample``; the guidance weight and the denoising step are the same in every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from glowapp.evaluation.agreement import ClassAccuracy, ClassTally, class_accuracy, tallied
from glowapp.evaluation.bayes import bayes_accuracy
from glowapp.evaluation.calibration import (
    CALIBRATIONS,
    CalibrationRow,
    Degradation,
    calibration_rows,
)
from glowapp.evaluation.data import to_uint8
from glowapp.evaluation.extractors import FeatureExtractor
from glowapp.evaluation.manifold import DEFAULT_K
from glowapp.evaluation.metrics import Quality, SampleQuality
from glowapp.generate import Temperature, class_labels, draw_noise, sample_with_noise
from glowapp.generate.common import in_eval_mode, seeded_generator
from glowapp.options import Sampling

if TYPE_CHECKING:
    from glowapp.image_flow import ImageFlow

__all__ = [
    "BAYES_IMAGES",
    "DEFAULT_TEMPERATURES",
    "Evaluation",
    "SampleRow",
    "evaluate",
    "mean_bits_per_dim",
    "sample_batches",
    "sample_row",
    "with_default_temperature",
]

DEFAULT_TEMPERATURES = (0.5, 0.7, 0.8, 1.0)

BAYES_IMAGES = 1000
"""Test images the Bayes classifier is measured on by default: it scores every class, up to
``K`` flow passes per image."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: e.g. ``("T = 0.7", 2000, 10000)``."""


def with_default_temperature(temperatures: Sequence[float], default: float) -> list[float]:
    """``temperatures`` with the model's ``default`` added if missing, in increasing order."""
    return sorted({float(t) for t in temperatures} | {float(default)})


@dataclass(frozen=True)
class SampleRow:
    """The samples at one temperature: their distances from the test images, whether it is the
    model's default temperature, and (class-conditional models) their class agreement."""

    temperature: float
    quality: Quality
    default: bool = False
    class_agreement: ClassAccuracy | None = None

    def as_dict(self) -> dict[str, Any]:
        """``{"temperature", "fid", "kid", "kid_std", "precision", "recall", "default"}`` (+
        ``class_agreement`` ``{"overall", "per_class"}`` when measured)."""
        row: dict[str, Any] = {
            "temperature": self.temperature,
            **self.quality.as_dict(),
            "default": self.default,
        }
        if self.class_agreement is not None:
            row["class_agreement"] = self.class_agreement.as_dict()
        return row


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured; :meth:`as_json` gives the ``glowapp evaluate`` document.

    ``sampling``: the model's default temperature, and the guidance weight and denoising every
    row was sampled with.
    """

    features: str
    label: str
    num_samples: int
    test_images: int
    test_bpd: float
    rows: list[SampleRow]
    reference: Quality
    sampling: Sampling
    bits_label: str = "bits/dim"
    test_bpd_iw: float | None = None
    iw_samples: int = 0
    manifold_k: int = DEFAULT_K
    calibration: list[CalibrationRow] = field(default_factory=list)
    classifier_accuracy: ClassAccuracy | None = None
    bayes_accuracy: ClassAccuracy | None = None
    bayes_images: int = 0

    def as_json(self, checkpoint: str) -> dict[str, Any]:
        """The document ``glowapp evaluate --json`` writes.

        The original contract, unchanged: ``{"checkpoint", "features", "label", "num_samples",
        "test_images", "test_bpd", "rows": [{"temperature", "fid", "kid", "kid_std"}],
        "reference": {"fid", "kid", "kid_std"}}`` (+ ``test_bpd_iw``/``iw_samples`` when
        measured). Added beside it:

        - every row and the reference: ``precision``, ``recall`` (k-NN manifolds, ``manifold_k``
          neighbours); every row: ``default`` (the model's default temperature) and, for
          class-conditional models, ``class_agreement`` ``{"overall", "per_class"}``;
        - ``bits_label`` (what ``test_bpd`` measures), ``manifold_k``, ``sampling``
          ``{"default_temperature", "guidance", "denoise"}``;
        - ``calibration``: ``[{"images": "blur" | "noise", "sigma", "fid", "kid", "kid_std",
          "precision", "recall"}]`` when measured;
        - class-conditional models: ``classifier_accuracy`` ``{"overall", "per_class"}`` on the
          test images, and ``bayes_accuracy`` ``{"overall", "per_class", "images"}`` when
          measured.

        ``per_class`` lists are indexed by label.
        """
        document: dict[str, Any] = {
            "checkpoint": checkpoint,
            "features": self.features,
            "label": self.label,
            "num_samples": self.num_samples,
            "test_images": self.test_images,
            "test_bpd": self.test_bpd,
            **(
                {"test_bpd_iw": self.test_bpd_iw, "iw_samples": self.iw_samples}
                if self.iw_samples
                else {}
            ),
            "rows": [row.as_dict() for row in self.rows],
            "reference": self.reference.as_dict(),
            "bits_label": self.bits_label,
            "manifold_k": self.manifold_k,
            "sampling": {
                "default_temperature": self.sampling.temperature,
                "guidance": self.sampling.guidance,
                "denoise": self.sampling.denoise,
            },
        }
        if self.calibration:
            document["calibration"] = [row.as_dict() for row in self.calibration]
        if self.classifier_accuracy is not None:
            document["classifier_accuracy"] = self.classifier_accuracy.as_dict()
        if self.bayes_accuracy is not None:
            document["bayes_accuracy"] = {
                **self.bayes_accuracy.as_dict(),
                "images": self.bayes_images,
            }
        return document


@in_eval_mode
@torch.no_grad()
def mean_bits_per_dim(
    model: ImageFlow,
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    iw_samples: int = 0,
) -> float:
    """Mean bits/dim of uint8 ``images`` ``[N, C, H, W]``: one uniform (or the model's
    variational) dequantisation draw per image from ``seed`` — the bound ``glowapp test``
    reports as ``test/bpd``; ``labels`` ``[N]`` condition a class-conditional model. With
    ``iw_samples`` > 0, the importance-weighted estimate over that many draws per image
    (:meth:`ImageFlow.bits_per_dim_iw`, what ``glowapp test`` reports as ``test/bpd_iw``)."""
    generator = seeded_generator(seed, model.device)
    conditional = bool(model.num_classes)
    total, done = 0.0, 0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        batch_labels = labels[start : start + batch_size].to(model.device) if conditional else None
        if iw_samples:
            bpd = model.bits_per_dim_iw(batch, iw_samples, generator, batch_labels)
        else:
            bpd = model.bits_per_dim(batch, True, generator, batch_labels)
        total += float(bpd.double().sum())
        done += len(batch)
        if progress is not None:
            progress(done)
    return total / done


def sample_batches(
    model: ImageFlow,
    noise: Sequence[Tensor],
    temperature: Temperature,
    batch_size: int,
    guidance: float | None = None,
    denoise: bool | None = None,
) -> Iterator[Tensor]:
    """Decode ``noise`` (``[ε_1, …, ε_L]`` of ``n`` samples) at ``temperature`` in batches:
    uint8 ``[b, C, H, W]`` each; a class-conditional model's samples cycle through its classes.
    ``guidance`` and ``denoise`` default to the model's own settings."""
    n = len(noise[0])
    labels = class_labels(model, None, n)
    for start in range(0, n, batch_size):
        part = [eps[start : start + batch_size] for eps in noise]
        part_labels = None if labels is None else labels[start : start + batch_size]
        images = sample_with_noise(model, part, [temperature], part_labels, guidance, denoise)[0]
        yield to_uint8(images)


def sample_row(
    model: ImageFlow,
    quality: SampleQuality,
    noise: Sequence[Tensor],
    temperature: float,
    batch_size: int = 500,
    guidance: float | None = None,
    denoise: bool | None = None,
    classifier: nn.Module | None = None,
    progress: Callable[[int], None] | None = None,
) -> SampleRow:
    """The samples ``noise`` decodes to at ``temperature`` (see :func:`sample_batches`), scored
    by ``quality`` (``quality.num_fake`` samples) in one decoding pass; with a ``classifier``
    (images → logits) and a class-conditional model, also their class agreement. ``default``
    says whether ``temperature`` is the model's own; ``progress(k)`` counts samples scored.
    """
    batches = sample_batches(model, noise, temperature, batch_size, guidance, denoise)
    tally = None
    if classifier is not None and model.num_classes:
        tally = ClassTally(model.num_classes)
        labels = class_labels(model, None, len(noise[0]))
        batches = tallied(batches, labels, classifier, tally)
    score = quality.score(batches, progress)
    default = float(temperature) == model.sampling.temperature
    return SampleRow(float(temperature), score, default, None if tally is None else tally.result())


def evaluate(
    model: ImageFlow,
    extractor: FeatureExtractor,
    test: tuple[Tensor, Tensor],
    train_images: Tensor,
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
    num_samples: int = 10_000,
    batch_size: int = 500,
    seed: int = 0,
    progress: Progress | None = None,
    iw_samples: int = 0,
    *,
    guidance: float | None = None,
    denoise: bool | None = None,
    classifier: nn.Module | None = None,
    calibration: Sequence[Degradation] = CALIBRATIONS,
    k: int = DEFAULT_K,
    bayes_images: int = BAYES_IMAGES,
) -> Evaluation:
    """Test bits/dim; FID, KID, precision and recall of ``num_samples`` samples per temperature,
    of ``train_images`` (the reference row) and of ``train_images`` under each ``calibration``
    degradation, all against the test images.

    Args:
        test: uint8 test images ``[N, C, H, W]`` and their labels ``[N]``.
        train_images: uint8 ``[num_samples, C, H, W]`` real training images.
        progress: called as each stage advances (see :data:`Progress`).
        iw_samples: > 0 also measures the importance-weighted test bits/dim over that many
            dequantisation draws per image (``test_bpd_iw``).
        guidance, denoise: classifier-free guidance weight and Tweedie denoising of every
            sample row (default: the model's own, :attr:`ImageFlow.sampling`).
        classifier: images → class logits ``[B, K]`` (e.g. the shipped Fashion-MNIST
            classifier); with a class-conditional model, measures each row's class agreement
            and the classifier's accuracy on the test images. Ignored for unconditional models.
        calibration: degradations of the training images to score (empty: none).
        k: neighbours of the precision/recall manifolds.
        bayes_images: class-conditional models: the model's Bayes-classifier accuracy on the
            first that many test images (0: not measured).

    Raises:
        ValueError: no temperature, a bad one, guidance or denoising the model cannot do, a
            batch size < 1, training images of another count than ``num_samples``, too few
            images for FID (see :func:`~glowapp.evaluation.check_set_size`), a bad ``k`` or a
            negative ``bayes_images``.
    """
    if len(train_images) != num_samples:
        raise ValueError(
            f"the reference row needs {num_samples} training images, one per sample; got "
            f"{len(train_images)} (the training split may be smaller)"
        )
    if bayes_images < 0:
        raise ValueError(f"bayes_images must be >= 0 (0 = off), got {bayes_images}")
    options = model.sampling_options(None, guidance, denoise)
    images, labels = test
    quality = SampleQuality(extractor, images, num_samples, batch_size, seed, k)
    noise = draw_noise(model, num_samples, seed)  # checks num_samples >= 1
    # One sample at every temperature first: the generation module checks each temperature
    # there, so a bad one fails at once rather than after the longer stages.
    sample_with_noise(
        model, [eps[:1] for eps in noise], temperatures, class_labels(model, None, 1),
        options.guidance, options.denoise,
    )  # fmt: skip

    def stage(name: str, total: int) -> Callable[[int], None] | None:
        return None if progress is None else (lambda done: progress(name, done, total))

    bpd = mean_bits_per_dim(
        model, images, labels, batch_size, seed, stage("test bits/dim", len(images))
    )
    bpd_iw = None
    if iw_samples:
        bpd_iw = mean_bits_per_dim(
            model, images, labels, batch_size, seed,
            stage(f"test bits/dim, {iw_samples} importance samples", len(images)), iw_samples,
        )  # fmt: skip
    num_classes = model.num_classes
    bayes_count = min(bayes_images, len(images)) if num_classes else 0
    bayes = None
    if bayes_count:
        bayes = bayes_accuracy(
            model, images[:bayes_count], labels[:bayes_count], batch_size,
            stage("Bayes classifier", bayes_count),
        )  # fmt: skip
    judge = classifier if num_classes else None
    accuracy = None
    if judge is not None:
        accuracy = class_accuracy(judge, images, labels, num_classes, batch_size)
    reference = quality.score(train_images.split(batch_size), stage("reference", num_samples))
    calibrated = calibration_rows(quality, train_images, calibration, seed, progress)
    rows = [
        sample_row(
            model, quality, noise, t, batch_size, options.guidance, options.denoise, judge,
            stage(f"T = {t:g}", num_samples),
        )
        for t in temperatures
    ]  # fmt: skip
    return Evaluation(
        features=extractor.name,
        label=extractor.label,
        num_samples=num_samples,
        test_images=len(images),
        test_bpd=bpd,
        rows=rows,
        reference=reference,
        sampling=options,
        bits_label=model.bits_label,
        test_bpd_iw=bpd_iw,
        iw_samples=iw_samples,
        manifold_k=k,
        calibration=calibrated,
        classifier_accuracy=accuracy,
        bayes_accuracy=bayes,
        bayes_images=bayes_count,
    )
