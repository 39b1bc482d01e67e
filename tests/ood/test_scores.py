"""The scores' math and orientation on tiny cases, and what each is fitted on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

import glowapp
from glowapp.ood import (
    ALL,
    BEST,
    COMBINED_PARTS,
    FOLDS,
    ORIENTATIONS,
    Detector,
    Measurements,
    codec_bits_per_dim,
    fit_reference,
    measure,
    parse_scores,
    scores_of,
)


def measurements(bpd: list[float], **codecs: list[float]) -> Measurements:
    """Measurements with the given bits/dim, codec lengths, and re-oriented copies at ``bpd``."""
    b = torch.tensor(bpd, dtype=torch.float64)
    return Measurements(
        b,
        {name: torch.tensor(v, dtype=torch.float64) for name, v in codecs.items()},
        background=b - 1,
        reoriented=torch.stack([b + 0.5, b - 0.25, b + 1.0], dim=1),
    )


def test_scores_are_oriented_and_computed_as_documented() -> None:
    m = measurements([3.0, 2.0, 5.0], png=[4.0, 1.0, 2.0], webp=[3.5, 1.0, 1.0], jpeg2000=[6, 6, 6])
    fit = fit_reference(m, ["likelihood"])
    assert fit.typical_bpd == pytest.approx(10 / 3)
    s = scores_of(m, fit, [n for n in ALL if n != BEST])
    torch.testing.assert_close(s["likelihood"], m.bpd)  # higher bits/dim = less likely = more OOD
    torch.testing.assert_close(s["typicality"], (m.bpd - 10 / 3).abs())
    torch.testing.assert_close(s["complexity"], m.bpd - m.codecs["png"])
    torch.testing.assert_close(s["complexity-webp"], m.bpd - m.codecs["webp"])
    torch.testing.assert_close(s["complexity-jpeg2000"], m.bpd - 6.0)
    torch.testing.assert_close(s["ratio"], torch.ones(3, dtype=torch.float64))
    # the best re-oriented copy is 0.25 bits/dim more likely than each image
    torch.testing.assert_close(s["orientation"], torch.full((3,), 0.25, dtype=torch.float64))


def test_typicality_is_fitted_on_the_reference_only() -> None:
    reference = measurements([3.0, 3.2, 3.4], png=[0] * 3, webp=[0] * 3, jpeg2000=[0] * 3)
    fit = fit_reference(reference, ["typicality"])
    near = scores_of(measurements([3.2]), fit, ["typicality"])["typicality"]
    far = scores_of(measurements([1.0, 9.0]), fit, ["typicality"])["typicality"]
    # μ = 3.2 whatever the candidates are: far in both directions is atypical
    assert float(near) == pytest.approx(0.0)
    torch.testing.assert_close(far, torch.tensor([2.2, 5.8], dtype=torch.float64))


def test_combined_is_the_largest_standardised_part() -> None:
    n = 40
    generator = torch.Generator().manual_seed(0)
    bpd = 3 + 0.1 * torch.randn(n, generator=generator, dtype=torch.float64)
    codec = 2 + 0.1 * torch.randn(n, generator=generator, dtype=torch.float64)
    reference = Measurements(
        bpd,
        {"webp": codec, "jpeg2000": codec + 1},
        reoriented=(bpd + 0.05 * torch.randn(n, generator=generator, dtype=torch.float64))[:, None]
        .expand(-1, 3)
        .contiguous(),
    )
    fit = fit_reference(reference, [BEST])
    assert list(fit.centres) == [p for p in COMBINED_PARTS if p != "ratio"] == list(fit.scales)
    parts = scores_of(reference, fit, list(fit.centres))
    expected = torch.stack([(parts[p] - fit.centres[p]) / fit.scales[p] for p in fit.centres])
    torch.testing.assert_close(scores_of(reference, fit, [BEST])[BEST], expected.amax(dim=0))
    centred = parts["orientation"] - parts["orientation"].median()
    assert fit.scales["orientation"] == pytest.approx(1.4826 * float(centred.abs().median()))
    # with the background model's bits/dim measured, ratio is a part too
    background = bpd - 1 + 0.2 * torch.randn(n, generator=generator, dtype=torch.float64)
    with_ratio = Measurements(reference.bpd, reference.codecs, background, reference.reoriented)
    fit = fit_reference(with_ratio, [BEST])
    assert list(fit.centres) == list(COMBINED_PARTS)
    ratio = (bpd - background - fit.centres["ratio"]) / fit.scales["ratio"]
    assert (scores_of(with_ratio, fit, [BEST])[BEST] >= ratio - 1e-12).all()


def test_complexity_uses_the_real_png_length() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 1, 28, 28), generator=generator, dtype=torch.uint8)
    images[1] = 0  # a blank image compresses to almost nothing
    lengths = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image[0].numpy()).save(buffer, "PNG", optimize=True)
        lengths.append(len(buffer.getvalue()) * 8 / 784)
    torch.testing.assert_close(
        codec_bits_per_dim(images, "png"), torch.tensor(lengths, dtype=torch.float64)
    )
    webp = codec_bits_per_dim(images, "webp")
    assert webp[1] < 1 < webp[0]  # and every codec can tell blank from noise


def test_measure_runs_the_model_on_each_reorientation(models: dict[str, Path]) -> None:
    model = glowapp.load(models["model"])
    background = glowapp.load(models["background"])
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (4, 1, 28, 28), generator=generator, dtype=torch.uint8)
    m = measure(model, images, ["orientation", "ratio", "complexity"], background)
    with torch.no_grad():
        torch.testing.assert_close(m.bpd, model.bits_per_dim(images, noise=False).double())
        torch.testing.assert_close(
            m.background, background.bits_per_dim(images, noise=False).double()
        )
        for i, turn in enumerate(ORIENTATIONS.values()):
            expected = model.bits_per_dim(turn(images).contiguous(), noise=False).double()
            torch.testing.assert_close(m.reoriented[:, i], expected)
    assert set(m.codecs) == {"png"}
    assert measure(model, images, ["likelihood"]).reoriented is None


def test_reference_scores_are_cross_fitted(models: dict[str, Path]) -> None:
    model = glowapp.load(models["model"])
    generator = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (23, 1, 28, 28), generator=generator, dtype=torch.uint8)
    detector = Detector(model, ["typicality"]).fit_reference(images)
    bpd = detector.reference.bpd
    folds = torch.arange(23) % FOLDS
    for i in range(23):
        others = bpd[folds != folds[i]].mean()
        assert float(detector.reference_scores["typicality"][i]) == pytest.approx(
            float((bpd[i] - others).abs())
        )
    assert detector.fit.typical_bpd == pytest.approx(float(bpd.mean()))
    # new images are scored with the fit on the whole reference
    torch.testing.assert_close(detector.score(images)["typicality"], (bpd - bpd.mean()).abs())


def test_detector_refusals(models: dict[str, Path]) -> None:
    model = glowapp.load(models["model"])
    with pytest.raises(ValueError, match="the reference set has 19 images; .* at least 20"):
        Detector(model, ["likelihood"]).fit_reference(torch.zeros(19, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="needs a background model"):
        Detector(model, ["ratio"])
    wide = glowapp.load(models["wide"])
    with pytest.raises(
        ValueError, match="background model takes 1x32x32 images and the model 1x28x28"
    ):
        Detector(model, ["ratio"], wide)


def test_score_names() -> None:
    assert parse_scores("all") == list(ALL)
    assert parse_scores(["combined", "likelihood"]) == ["likelihood", "combined"]
    with pytest.raises(
        ValueError, match="unknown score 'likelyhood'; the scores are: likelihood, "
    ):
        parse_scores(["likelyhood"])
