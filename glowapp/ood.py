"""Out-of-distribution detection with a flow's exact likelihood: scores, their fit, the metrics.

Every score is oriented so that **higher means more out-of-distribution**. With ``b(x)`` the
model's bits/dim at the bin centres (``D = C·H·W`` dimensions):

* ``likelihood``: ``b(x)`` itself (Nalisnick et al. 2019a: it fails, MNIST gets a *lower*
  ``b`` than Fashion-MNIST under a Fashion-MNIST Glow);
* ``typicality``: ``|b(x) − μ|``, ``μ`` the mean ``b`` of the in-distribution reference set
  (Nalisnick et al. 2019b, per image; :func:`batch_typicality` is their test on batches);
* ``complexity``, ``complexity-webp``, ``complexity-jpeg2000``: ``b(x) − L(x)/D``, ``L(x)`` the
  length in bits of the image saved by a lossless codec (PNG, WebP lossless, JPEG 2000
  lossless; Serrà et al. 2020, "input complexity");
* ``ratio``: ``b(x) − b_bg(x)``, the log likelihood ratio against a background model per
  dimension (Ren et al. 2019; Schirrmeister et al. 2020: a small, local model learns the low-level
  statistics that dominate every likelihood, and the ratio cancels them);
* ``orientation``: ``b(x) − min_g b(g·x)`` over ``g`` = upside down, rotated by 90° and by 270°
  (:data:`ORIENTATIONS`): how much less likely the image is than its own best re-oriented copy.
  A log likelihood ratio whose two sides share every low-level statistic, so only what the model
  knows about whole objects is left (the generative counterpart of the transformation
  classifiers of Golan & El-Yaniv 2018 and Hendrycks et al. 2019; mirror images are left out
  because the shipped models are trained with left-right flips);
* ``combined``: ``max_k (s_k(x) − m_k) / (1.4826 · MAD_k)`` over :data:`COMBINED_PARTS` (``ratio``
  only with a background model), each score standardised by the median ``m_k`` and median
  absolute deviation ``MAD_k`` of its reference scores (the factor makes it a standard deviation
  for normal data): an image is as out-of-distribution as its most surprising score says. The
  best score measured (docs/ood.md).

Whatever a score fits (``μ``, ``m_k``, ``MAD_k``, a threshold) is fitted on the reference set only,
never on the images being judged. The reference set's own scores are cross-fitted
(:data:`FOLDS` folds: each image is scored with the fit of the other folds), so they are
out-of-sample like every candidate's and a metric against them is not flattered.

Metrics (:func:`auroc`, :func:`aupr` with torchmetrics, :func:`fpr_at_tpr`) treat the reference as in-distribution
and the candidates as out-of-distribution; :func:`threshold_at_tpr` is the score below which 95 %
of the reference falls, the line ``glowapp score`` draws between "typical" and "outlier".
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import Tensor
from torchmetrics.functional.classification import binary_average_precision

from glowapp.generate.common import in_eval_mode
from glowapp.image_flow import ImageFlow

__all__ = [
    "ALL",
    "BACKGROUND_MODEL",
    "BEST",
    "CODECS",
    "COMBINED_PARTS",
    "FOLDS",
    "MIN_REFERENCE",
    "ORIENTATIONS",
    "SCORES",
    "TPR",
    "Detector",
    "Measurements",
    "ReferenceFit",
    "aupr",
    "auroc",
    "batch_typicality",
    "check_background",
    "check_matplotlib",
    "combined_parts",
    "codec_bits_per_dim",
    "fit_reference",
    "fpr_at_tpr",
    "measure",
    "needs_background",
    "parse_scores",
    "plot_histograms",
    "scores_of",
    "threshold_at_tpr",
    "uses_background",
]

SCORES: dict[str, str] = {
    "likelihood": "bits/dim (Nalisnick et al. 2019a)",
    "typicality": "|bits/dim − the reference's mean| (Nalisnick et al. 2019b, per image)",
    "complexity": "bits/dim − PNG bits/dim (Serrà et al. 2020)",
    "complexity-webp": "bits/dim − WebP-lossless bits/dim (Serrà et al. 2020)",
    "complexity-jpeg2000": "bits/dim − JPEG 2000-lossless bits/dim (Serrà et al. 2020)",
    "ratio": "bits/dim − the background model's bits/dim (Ren et al. 2019; Schirrmeister et al. 2020)",
    "orientation": "bits/dim − the least bits/dim of its upside-down and 90°/270°-rotated copies",
    "combined": "the largest standardised score of complexity-webp, complexity-jpeg2000, "
    "orientation and (with a background model) ratio",
}
"""Every score's name and what it is (higher = more out-of-distribution)."""

ALL = tuple(SCORES)
"""What ``--score all`` computes (``ratio`` only where a background model fits the model)."""

BEST = "combined"
"""The score with the best worst case over the shifts measured (docs/ood.md)."""

COMBINED_PARTS = ("complexity-webp", "complexity-jpeg2000", "orientation", "ratio")
"""The scores ``combined`` takes the largest standardised value of (``ratio`` where a background
model is measured)."""

CODECS: dict[str, dict[str, object]] = {
    "png": {"format": "PNG", "optimize": True},
    "webp": {"format": "WEBP", "lossless": True, "quality": 100, "method": 6},
    "jpeg2000": {"format": "JPEG2000", "irreversible": False, "no_jp2": True},
}
"""Lossless codecs (Pillow's save options): PNG at its strongest setting, WebP lossless at its
slowest and smallest, JPEG 2000's reversible wavelet as a bare codestream."""

_COMPLEXITY_CODEC = {
    "complexity": "png",
    "complexity-webp": "webp",
    "complexity-jpeg2000": "jpeg2000",
}

ORIENTATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "upside down": lambda x: x.flip(-2),
    "rotated 90°": lambda x: x.rot90(1, (-2, -1)),
    "rotated 270°": lambda x: x.rot90(-1, (-2, -1)),
}
"""The re-orientations ``orientation`` compares an image with (mirroring left-right excluded)."""

BACKGROUND_MODEL = "fashion-mnist-background"
"""The shipped background model of ``ratio`` (:data:`glowapp.pretrained.SHIPPED`)."""

FOLDS = 5
"""Cross-fitting folds of the reference set."""

TPR = 0.95
"""Share of the reference a threshold accepts as typical."""

MIN_REFERENCE = 20
"""Fewest reference images: a 95 %-TPR threshold needs ``1 / (1 − 0.95) = 20``."""

MAD_TO_STD = 1.4826
"""``σ = 1.4826 · MAD`` for normal data."""


# ---- measuring images -----------------------------------------------------------------------
@dataclass(frozen=True)
class Measurements:
    """Per-image quantities the scores are computed from (each ``[N]`` float64)."""

    bpd: Tensor
    """The model's bits/dim at the bin centres."""
    codecs: dict[str, Tensor] = field(default_factory=dict)
    """Lossless file length per codec, in bits per dimension."""
    background: Tensor | None = None
    """The background model's bits/dim (None: not measured)."""
    reoriented: Tensor | None = None
    """``[N, len(ORIENTATIONS)]`` bits/dim of each re-oriented copy (None: not measured)."""

    def __len__(self) -> int:
        return len(self.bpd)

    def subset(self, index: Tensor) -> Measurements:
        """The measurements of the images ``index`` (a long or bool tensor)."""
        return Measurements(
            self.bpd[index],
            {name: bits[index] for name, bits in self.codecs.items()},
            None if self.background is None else self.background[index],
            None if self.reoriented is None else self.reoriented[index],
        )


def codec_bits_per_dim(images: Tensor, codec: str) -> Tensor:
    """``L(x) / D`` ``[N]`` float64: each uint8 ``[C, H, W]`` image's lossless file length in bits
    (:data:`CODECS`), headers included, per dimension."""
    options = dict(CODECS[codec])
    image_format = options.pop("format")
    lengths = []
    for image in images.cpu():
        array = image.permute(1, 2, 0).numpy()
        buffer = io.BytesIO()
        Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(
            buffer, image_format, **options
        )
        lengths.append(8 * buffer.tell())
    return torch.tensor(lengths, dtype=torch.float64) / math.prod(images.shape[1:])


@in_eval_mode
@torch.inference_mode()
def _bits(model: ImageFlow, images: Tensor, batch_size: int) -> Tensor:
    """The model's bits/dim ``[N]`` float64 at the bin centres, ``batch_size`` images at a time."""
    parts = [model.bits_per_dim(batch, noise=False) for batch in images.split(batch_size)]
    return torch.cat(parts).double().cpu()


def _needs(names: Iterable[str]) -> set[str]:
    """The scores ``names`` stand on: ``combined`` stands on :data:`COMBINED_PARTS` (``ratio``
    optional)."""
    names = set(names)
    required = set(COMBINED_PARTS) - {"ratio"}
    return names | required if BEST in names else names


def needs_background(names: Iterable[str]) -> bool:
    """Whether any of the scores ``names`` cannot do without a background model (``ratio``)."""
    return "ratio" in set(names)


def uses_background(names: Iterable[str]) -> bool:
    """Whether any of the scores ``names`` uses a background model when there is one (``ratio``,
    and ``combined`` through its ``ratio`` part)."""
    return bool({"ratio", BEST} & set(names))


def check_background(model: ImageFlow, background: ImageFlow) -> None:
    """Raise a ValueError when ``background`` scores images of another shape than ``model``."""
    if tuple(background.image_shape) != tuple(model.image_shape):
        shape = "x".join(map(str, background.image_shape))
        theirs = "x".join(map(str, model.image_shape))
        raise ValueError(
            f"the background model takes {shape} images and the model {theirs}: train a "
            "background model on the model's images (configs/shipped/fashion-mnist-background.yaml)"
        )


def measure(
    model: ImageFlow,
    images: Tensor,
    names: Iterable[str],
    background: ImageFlow | None = None,
    batch_size: int = 200,
) -> Measurements:
    """What the scores ``names`` need of uint8 images ``[N, C, H, W]`` in the model's shape.

    Always the model's bits/dim; the codecs' lengths for the complexity scores; the background
    model's bits/dim for ``ratio`` (and for ``combined``, when ``background`` is given); the
    re-oriented copies' bits/dim for ``orientation`` (three more passes of the model: the
    costliest score). ``combined`` needs its parts.

    Raises:
        ValueError: ``ratio`` without a background model, or one for another image shape.
    """
    needed = _needs(names)
    codecs = {
        _COMPLEXITY_CODEC[n]: codec_bits_per_dim(images, _COMPLEXITY_CODEC[n])
        for n in sorted(needed & set(_COMPLEXITY_CODEC))
    }
    if needs_background(needed) and background is None:
        raise ValueError("the ratio score needs a background model (--background)")
    bg = None
    if background is not None and uses_background(needed):
        check_background(model, background)
        bg = _bits(background, images, batch_size)
    reoriented = None
    if "orientation" in needed:
        copies = [
            _bits(model, turn(images).contiguous(), batch_size) for turn in ORIENTATIONS.values()
        ]
        reoriented = torch.stack(copies, dim=1)
    return Measurements(_bits(model, images, batch_size), codecs, bg, reoriented)


# ---- scores ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReferenceFit:
    """What the scores fit on in-distribution reference data: the typical bits/dim ``μ`` and, per
    part of ``combined``, the median and the scale ``1.4826 · MAD`` of its scores."""

    typical_bpd: float
    centres: dict[str, float] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)


def _unfitted(m: Measurements, name: str, typical_bpd: float) -> Tensor:
    """Score ``name`` (not ``combined``) of measurements ``m`` ``[N]``, given ``μ``."""
    if name == "likelihood":
        return m.bpd
    if name == "typicality":
        return (m.bpd - typical_bpd).abs()
    if name in _COMPLEXITY_CODEC:
        return m.bpd - m.codecs[_COMPLEXITY_CODEC[name]]
    if name == "ratio":
        assert m.background is not None, "measure() the background model for ratio"
        return m.bpd - m.background
    if name == "orientation":
        assert m.reoriented is not None, "measure() the re-oriented copies for orientation"
        return m.bpd - m.reoriented.min(dim=1).values
    raise ValueError(f"unknown score {name!r}; the scores are: {', '.join(SCORES)}")


def combined_parts(m: Measurements) -> list[str]:
    """The parts of ``combined`` that ``m`` has: :data:`COMBINED_PARTS`, ``ratio`` only with the
    background model's bits/dim."""
    return [p for p in COMBINED_PARTS if p != "ratio" or m.background is not None]


def fit_reference(reference: Measurements, names: Iterable[str]) -> ReferenceFit:
    """Fit ``μ`` (the mean bits/dim) and, if ``combined`` is among ``names``, the median and
    ``1.4826 · MAD`` of each of its parts (a MAD of 0 falls back to the standard deviation, then
    to 1, so a constant score cannot divide by zero)."""
    typical = float(reference.bpd.mean())
    centres: dict[str, float] = {}
    scales: dict[str, float] = {}
    if BEST in set(names):
        for part in combined_parts(reference):
            values = _unfitted(reference, part, typical)
            centre = float(values.median())
            mad = float((values - centre).abs().median()) * MAD_TO_STD
            if mad <= 0 and len(values) > 1:
                mad = float(values.std())
            centres[part], scales[part] = centre, mad if mad > 0 else 1.0
    return ReferenceFit(typical, centres, scales)


def scores_of(m: Measurements, fit: ReferenceFit, names: Sequence[str]) -> dict[str, Tensor]:
    """The scores ``names`` ``{name: [N] float64}`` of measurements ``m`` under ``fit``."""
    out: dict[str, Tensor] = {}
    for name in names:
        if name == BEST:
            standardised = [
                (_unfitted(m, part, fit.typical_bpd) - fit.centres[part]) / fit.scales[part]
                for part in fit.centres
            ]
            out[name] = torch.stack(standardised).max(dim=0).values
        else:
            out[name] = _unfitted(m, name, fit.typical_bpd)
    return out


def parse_scores(text: Sequence[str] | str) -> list[str]:
    """Score names from ``--score`` values (``all`` = :data:`ALL`), in :data:`SCORES` order.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    asked = [text] if isinstance(text, str) else list(text)
    unknown = [name for name in asked if name != "all" and name not in SCORES]
    if unknown:
        raise ValueError(
            f"unknown score {unknown[0]!r}; the scores are: {', '.join(SCORES)}, or all"
        )
    return [name for name in SCORES if name in asked or "all" in asked]


# ---- metrics --------------------------------------------------------------------------------
def _ranked(reference: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
    """Both score sets as ranks in ``[0, 1)`` (ties share a rank) and labels (1 = candidate).

    torchmetrics reads scores outside ``[0, 1]`` as logits and squashes them with a sigmoid,
    which ties large scores in float32; ranks keep every order and tie exactly what was tied.
    """
    values = torch.cat([reference.double(), candidates.double()])
    distinct, rank = torch.unique(values, sorted=True, return_inverse=True)
    preds = rank.double() / max(len(distinct), 1)
    labels = torch.cat([torch.zeros(len(reference)), torch.ones(len(candidates))]).long()
    return preds, labels


def _check_sets(reference: Tensor, candidates: Tensor) -> None:
    if not len(reference) or not len(candidates):
        raise ValueError("a metric needs at least one reference and one candidate score")


def auroc(reference: Tensor, candidates: Tensor) -> float:
    """Area under the ROC curve, ``P(s_cand > s_ref) + ½ P(s_cand = s_ref)``, exactly in float64.

    The Mann–Whitney form ``(R − m(m+1)/2) / (n m)``, ``R`` the sum of the ``m`` candidates'
    ranks among all ``n + m`` scores (tied scores share their average rank): the same number as
    torchmetrics' ``binary_auroc`` (which sums in float32) and scikit-learn's
    ``roc_auc_score``, to the last digit a CSV of the scores can be recomputed with.
    """
    _check_sets(reference, candidates)
    values = torch.cat([reference.double(), candidates.double()])
    _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = (ends - (counts.double() - 1) / 2)[inverse]
    n, m = len(reference), len(candidates)
    return float((ranks[n:].sum() - m * (m + 1) / 2) / (n * m))


def aupr(reference: Tensor, candidates: Tensor) -> float:
    """Area under the precision-recall curve with the candidates as the positive class (the
    average precision, torchmetrics; "AUPR-out")."""
    _check_sets(reference, candidates)
    return float(binary_average_precision(*_ranked(reference, candidates)))


def threshold_at_tpr(reference: Tensor, tpr: float = TPR) -> float:
    """``τ``: the ``⌈tpr · n⌉``-th smallest of ``n`` reference scores, so that at least ``tpr`` of
    the reference scores ``≤ τ`` ("typical") and an image scoring above ``τ`` is an "outlier".

    Raises:
        ValueError: fewer than ``1 / (1 − tpr)`` reference scores (20 at 95 %).
    """
    needed = math.ceil(1 / (1 - tpr) - 1e-9)
    if len(reference) < needed:
        raise ValueError(
            f"the reference set has {len(reference)} images; a threshold at {tpr:.0%} TPR needs "
            f"at least {needed}"
        )
    ordered = reference.double().sort().values
    return float(ordered[math.ceil(tpr * len(ordered) - 1e-9) - 1])


def fpr_at_tpr(reference: Tensor, candidates: Tensor, tpr: float = TPR) -> float:
    """FPR at 95 % TPR: the share of candidates scoring ``≤ τ`` (:func:`threshold_at_tpr`), i.e.
    taken for in-distribution when 95 % of the reference is."""
    _check_sets(reference, candidates)
    tau = threshold_at_tpr(reference, tpr)
    return float((candidates.double() <= tau).double().mean())


def batch_typicality(
    reference_bpd: Tensor, candidate_bpd: Tensor, k: int, typical_bpd: float
) -> float:
    """AUROC of the typicality test on batches (Nalisnick et al. 2019b): consecutive batches of
    ``k`` images, each scored ``|mean bits/dim of the batch − μ|`` (remainders dropped).

    ``μ`` must come from data other than ``reference_bpd``
    (:meth:`Detector.batch_typicality` centres each reference image on its own fold's ``μ``).

    Raises:
        ValueError: ``k < 1``, or fewer than ``k`` images in a set.
    """
    if k < 1:
        raise ValueError(f"batches need k >= 1 images, got {k}")

    def batches(bpd: Tensor) -> Tensor:
        n = len(bpd) // k
        if not n:
            raise ValueError(f"a set of {len(bpd)} images holds no batch of {k}")
        return (bpd[: n * k].double().view(n, k).mean(dim=1) - typical_bpd).abs()

    return auroc(batches(reference_bpd), batches(candidate_bpd))


# ---- the detector ---------------------------------------------------------------------------
class Detector:
    """A model (and a background model for ``ratio``), fitted on in-distribution reference images.

    ``fit(reference)`` measures the reference, fits :class:`ReferenceFit` on it, and keeps its
    cross-fitted scores (fold ``f`` = the images ``i`` with ``i mod FOLDS = f``, scored with the
    fit of the other folds) and each score's threshold ``τ`` (:func:`threshold_at_tpr`).
    ``score(images)`` scores new images with the fit on the whole reference.

    Args:
        model: the density model.
        names: the scores (keys of :data:`SCORES`).
        background: the background model (``ratio`` only).
        batch_size: images per model pass.
    """

    def __init__(
        self,
        model: ImageFlow,
        names: Sequence[str],
        background: ImageFlow | None = None,
        batch_size: int = 200,
    ) -> None:
        self.names = parse_scores(list(names))
        if background is not None:
            check_background(model, background)
        if needs_background(self.names) and background is None:
            raise ValueError("the ratio score needs a background model (--background)")
        self.model = model
        self.background = background
        self.batch_size = batch_size
        self.fit: ReferenceFit | None = None
        self.reference: Measurements | None = None
        self.reference_scores: dict[str, Tensor] = {}
        self.thresholds: dict[str, float] = {}
        self._fold_typical: Tensor | None = None

    def measure(self, images: Tensor) -> Measurements:
        """:func:`measure` of uint8 images ``[N, C, H, W]`` for this detector's scores."""
        return measure(self.model, images, self.names, self.background, self.batch_size)

    def fit_reference(self, images: Tensor) -> Detector:
        """Measure and fit the reference images (at least :data:`MIN_REFERENCE`).

        Raises:
            ValueError: too few reference images for a threshold.
        """
        if len(images) < MIN_REFERENCE:
            raise ValueError(
                f"the reference set has {len(images)} images; fitting a threshold at "
                f"{TPR:.0%} TPR needs at least {MIN_REFERENCE}"
            )
        return self.fit_measured(self.measure(images))

    def fit_measured(self, reference: Measurements) -> Detector:
        """:meth:`fit_reference` from measurements already taken."""
        if len(reference) < MIN_REFERENCE:
            raise ValueError(
                f"the reference set has {len(reference)} images; fitting a threshold at "
                f"{TPR:.0%} TPR needs at least {MIN_REFERENCE}"
            )
        self.reference = reference
        self.fit = fit_reference(reference, self.names)
        folds = torch.arange(len(reference)) % FOLDS
        scores = {name: torch.empty(len(reference), dtype=torch.float64) for name in self.names}
        typical = torch.empty(len(reference), dtype=torch.float64)
        for fold in range(FOLDS):
            held_out = folds == fold
            fold_fit = fit_reference(reference.subset(~held_out), self.names)
            for name, values in scores_of(reference.subset(held_out), fold_fit, self.names).items():
                scores[name][held_out] = values
            typical[held_out] = fold_fit.typical_bpd
        self.reference_scores = scores
        self._fold_typical = typical
        self.thresholds = {name: threshold_at_tpr(values) for name, values in scores.items()}
        return self

    def _fitted(self) -> ReferenceFit:
        if self.fit is None:
            raise RuntimeError("fit the detector on reference images first (fit_reference)")
        return self.fit

    def score_measured(self, measured: Measurements) -> dict[str, Tensor]:
        """Every score ``{name: [N] float64}`` of measured images, under the whole reference's fit."""
        return scores_of(measured, self._fitted(), self.names)

    def score(self, images: Tensor) -> dict[str, Tensor]:
        """Every score ``{name: [N] float64}`` of uint8 images ``[N, C, H, W]``."""
        return self.score_measured(self.measure(images))

    def batch_typicality(self, measured: Measurements, k: int) -> float:
        """:func:`batch_typicality` of measured candidates against the reference: each reference
        image is centred on its fold's cross-fitted ``μ``, the candidates on the whole
        reference's."""
        fit = self._fitted()
        assert self.reference is not None and self._fold_typical is not None
        # b − μ_fold + μ: a batch's |mean − μ| is then the mean of its images' own fold's b − μ.
        reference = self.reference.bpd - self._fold_typical + fit.typical_bpd
        return batch_typicality(reference, measured.bpd, k, fit.typical_bpd)


# ---- plotting ---------------------------------------------------------------------------------
PLOT_HINT = "pip install 'glowapp[demo]'"
"""How to get matplotlib, which plotting needs (it is not in the core install)."""


def check_matplotlib() -> None:
    """Raise a one-line ValueError when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError(
            f"plotting the scores needs matplotlib, which is not installed: {PLOT_HINT}"
        ) from None


def plot_histograms(
    sets: Sequence[tuple[str, Mapping[str, Tensor]]],
    names: Sequence[str],
    thresholds: Mapping[str, float],
    marks: Mapping[str, float] | None = None,
) -> bytes:
    """A PNG of one panel per score: each named set's histogram (as a density, so sets of any
    size compare), the threshold ``τ`` dashed, and ``marks`` (one image's scores) in red.

    Raises:
        ValueError: matplotlib is not installed.
    """
    check_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        values = [scores[name].double().cpu() for _, scores in sets]
        extra = [] if marks is None else [marks[name]]
        everything = torch.cat([*values, torch.tensor([thresholds[name], *extra])])
        low, high = float(everything.min()), float(everything.max())
        bins = torch.linspace(low, high if high > low else low + 1, 41).numpy()
        for (label, _), v in zip(sets, values, strict=True):
            ax.hist(v.numpy(), bins=bins, density=True, histtype="step", label=label)
        ax.axvline(thresholds[name], color="black", linestyle="--", linewidth=1, label="τ")
        if marks is not None:
            ax.axvline(marks[name], color="red", linewidth=2, label="this image")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("higher = more out-of-distribution", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()
