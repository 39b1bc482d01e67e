"""Evaluate a model: test bits/dim, and FID/KID of its samples at several temperatures, beside
the reference row of real training images (the floor no model can beat).

The samples are :mod:`glowapp.generate`'s: one noise draw ``ε`` from ``seed`` decoded at each
temperature ``T`` as ``decode(T · ε)`` (every class in turn for a class-conditional model), so
rows differ only by temperature, exactly as in ``glowapp sample``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from glowapp.evaluation.data import to_uint8
from glowapp.evaluation.extractors import FeatureExtractor
from glowapp.evaluation.metrics import Quality, SampleQuality
from glowapp.generate import Temperature, class_labels, draw_noise, sample_with_noise
from glowapp.generate.common import in_eval_mode, seeded_generator

if TYPE_CHECKING:
    from glowapp.module import GlowModule

__all__ = ["DEFAULT_TEMPERATURES", "Evaluation", "evaluate", "mean_bits_per_dim", "sample_batches"]

DEFAULT_TEMPERATURES = (0.5, 0.7, 0.8, 1.0)

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: e.g. ``("T = 0.7", 2000, 10000)``."""


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured; :meth:`as_json` gives the ``glowapp evaluate`` document."""

    features: str
    label: str
    num_samples: int
    test_images: int
    test_bpd: float
    rows: list[tuple[float, Quality]]
    reference: Quality
    test_bpd_iw: float | None = None
    iw_samples: int = 0

    def as_json(self, checkpoint: str) -> dict[str, Any]:
        """``{"checkpoint", "features", "num_samples", "test_bpd", "rows": [{"temperature",
        "fid", "kid", "kid_std"}], "reference": {"fid", "kid", "kid_std"}}`` (+ ``label``,
        ``test_images``, and ``test_bpd_iw``/``iw_samples`` when measured)."""
        return {
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
            "rows": [{"temperature": t, **quality.as_dict()} for t, quality in self.rows],
            "reference": self.reference.as_dict(),
        }


@in_eval_mode
@torch.no_grad()
def mean_bits_per_dim(
    module: GlowModule,
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
    (:meth:`GlowModule.bits_per_dim_iw`, what ``glowapp test`` reports as ``test/bpd_iw``)."""
    generator = seeded_generator(seed, module.device)
    conditional = bool(module.flow.num_classes)
    total, done = 0.0, 0
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        batch_labels = labels[start : start + batch_size].to(module.device) if conditional else None
        if iw_samples:
            bpd = module.bits_per_dim_iw(batch, iw_samples, generator, batch_labels)
        else:
            bpd = module.bits_per_dim(batch, True, generator, batch_labels)
        total += float(bpd.double().sum())
        done += len(batch)
        if progress is not None:
            progress(done)
    return total / done


def sample_batches(
    module: GlowModule, noise: Sequence[Tensor], temperature: Temperature, batch_size: int
) -> Iterator[Tensor]:
    """Decode ``noise`` (``[ε_1, …, ε_L]`` of ``n`` samples) at ``temperature`` in batches:
    uint8 ``[b, C, H, W]`` each; a class-conditional model's samples cycle through its classes."""
    n = len(noise[0])
    labels = class_labels(module, None, n)
    for start in range(0, n, batch_size):
        part = [eps[start : start + batch_size] for eps in noise]
        part_labels = None if labels is None else labels[start : start + batch_size]
        images = sample_with_noise(module, part, [temperature], part_labels)[0]
        yield to_uint8(images)


def evaluate(
    module: GlowModule,
    extractor: FeatureExtractor,
    test: tuple[Tensor, Tensor],
    train_images: Tensor,
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
    num_samples: int = 10_000,
    batch_size: int = 500,
    seed: int = 0,
    progress: Progress | None = None,
    iw_samples: int = 0,
) -> Evaluation:
    """Test bits/dim, FID/KID of ``num_samples`` samples per temperature and of
    ``train_images`` (the reference row), both against the test images.

    Args:
        test: uint8 test images ``[N, C, H, W]`` and their labels ``[N]``.
        train_images: uint8 ``[num_samples, C, H, W]`` real training images.
        progress: called as each stage advances (see :data:`Progress`).
        iw_samples: > 0 also measures the importance-weighted test bits/dim over that many
            dequantisation draws per image (``test_bpd_iw``).

    Raises:
        ValueError: no temperature, a bad one, a batch size < 1, training images of another
            count than ``num_samples``, or too few images for FID (see
            :func:`~glowapp.evaluation.check_set_size`).
    """
    if len(train_images) != num_samples:
        raise ValueError(
            f"the reference row needs {num_samples} training images, one per sample; got "
            f"{len(train_images)} (the training split may be smaller)"
        )
    images, labels = test
    quality = SampleQuality(extractor, images, num_samples, batch_size, seed)
    noise = draw_noise(module, num_samples, seed)  # checks num_samples >= 1
    # One sample at every temperature first: the generation module checks each temperature
    # there, so a bad one fails at once rather than after the longer stages.
    sample_with_noise(
        module, [eps[:1] for eps in noise], temperatures, class_labels(module, None, 1)
    )

    def stage(name: str, total: int) -> Callable[[int], None] | None:
        return None if progress is None else (lambda done: progress(name, done, total))

    bpd = mean_bits_per_dim(
        module, images, labels, batch_size, seed, stage("test bits/dim", len(images))
    )
    bpd_iw = None
    if iw_samples:
        bpd_iw = mean_bits_per_dim(
            module, images, labels, batch_size, seed,
            stage(f"test bits/dim, {iw_samples} importance samples", len(images)), iw_samples,
        )  # fmt: skip
    reference = quality.score(train_images.split(batch_size), stage("reference", num_samples))
    rows = []
    for t in temperatures:
        batches = sample_batches(module, noise, t, batch_size)
        rows.append((float(t), quality.score(batches, stage(f"T = {t:g}", num_samples))))
    return Evaluation(
        extractor.name,
        extractor.label,
        num_samples,
        len(images),
        bpd,
        rows,
        reference,
        bpd_iw,
        iw_samples,
    )
