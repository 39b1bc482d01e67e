"""Calibration rows: the Gaussian blur and noise as defined, seeded, and real images scored by
them ranking from the reference upwards as the degradation grows."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from glowapp.evaluation import (
    CALIBRATIONS,
    Degradation,
    FeatureExtractor,
    SampleQuality,
    calibration_rows,
)
from glowapp.evaluation.calibration import gaussian_blur, gaussian_noise


def test_the_blur_of_a_point_is_the_gaussian_kernel() -> None:
    image = torch.zeros(1, 1, 15, 15, dtype=torch.uint8)
    image[0, 0, 7, 7] = 255
    sigma = 1.0
    offsets = torch.arange(-7, 8, dtype=torch.float64)
    g = torch.exp(-(offsets**2) / (2 * sigma**2)) * (offsets.abs() <= 3)
    g = g / g.sum()
    expected = (255 * torch.outer(g, g)).round()
    assert torch.equal(gaussian_blur(image, sigma)[0, 0].double(), expected)


def test_the_blur_keeps_a_flat_image_and_each_channel_apart() -> None:
    image = torch.full((2, 3, 10, 12), 90, dtype=torch.uint8)
    image[:, 1] = 200
    assert torch.equal(gaussian_blur(image, 1.5), image)


def test_the_noise_is_seeded_clipped_and_of_the_given_std() -> None:
    grey = torch.full((4, 1, 28, 28), 128, dtype=torch.uint8)
    first = gaussian_noise(grey, 0.1, torch.Generator().manual_seed(0))
    again = gaussian_noise(grey, 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(first, again) and first.dtype == torch.uint8
    values = first.double() / 255
    assert values.std().item() == pytest.approx(0.1, rel=0.05)
    assert values.mean().item() == pytest.approx(128 / 255, abs=0.01)
    black = gaussian_noise(torch.zeros_like(grey), 0.2, torch.Generator().manual_seed(1))
    assert int(black.min()) == 0 and (black == 0).double().mean().item() > 0.45  # clipped at 0


@pytest.mark.parametrize(
    ("kind", "sigma", "message"),
    [
        ("smear", 1.0, "unknown degradation 'smear'; choose blur or noise"),
        ("blur", 0.0, "sigma must be a finite number > 0, got 0.0"),
        ("noise", math.inf, "sigma must be a finite number > 0, got inf"),
    ],
)
def test_bad_degradations_are_refused(kind: str, sigma: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Degradation(kind, sigma)


def test_labels_and_batches() -> None:
    assert [d.label for d in CALIBRATIONS] == [
        "blur σ = 0.5 px",
        "blur σ = 1 px",
        "blur σ = 1.5 px",
        "noise σ = 0.05",
        "noise σ = 0.1",
        "noise σ = 0.2",
    ]
    images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    noise = Degradation("noise", 0.1)
    assert [len(b) for b in noise.batches(images, 4, seed=3)] == [4, 4, 2]
    first, again = (torch.cat(list(noise.batches(images, 4, seed=3))) for _ in range(2))
    assert torch.equal(first, again)


def test_calibration_rows_are_finite_and_grow_with_the_degradation(
    extractor: FeatureExtractor, real: dict[str, Tensor]
) -> None:
    quality = SampleQuality(extractor, real["test"], len(real["train"]), batch_size=128)
    reference = quality.score(real["train"].split(128))
    stages = []
    rows = calibration_rows(
        quality, real["train"], progress=lambda *args: stages.append(args[0]), seed=0
    )
    assert [row.degradation for row in rows] == list(CALIBRATIONS)
    assert list(dict.fromkeys(stages)) == [d.label for d in CALIBRATIONS]
    for row in rows:
        values = row.quality.as_dict().values()
        assert all(math.isfinite(v) for v in values), row
        assert 0.0 <= row.quality.precision <= 1.0 and 0.0 <= row.quality.recall <= 1.0
        assert row.as_dict()["images"] == row.degradation.kind
    for kind in ("blur", "noise"):
        fids = [r.quality.fid for r in rows if r.degradation.kind == kind]
        recalls = [r.quality.recall for r in rows if r.degradation.kind == kind]
        assert reference.fid < fids[0] < fids[1] < fids[2], (kind, reference, fids)
        assert reference.recall > recalls[0] > recalls[2], (kind, reference, recalls)
