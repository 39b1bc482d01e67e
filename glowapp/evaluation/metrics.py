"""FID and KID of image sets against one fixed set of real images, through torchmetrics.

``FID = ‖μ_r − μ_g‖² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2})`` between Gaussians fitted to the two
sets' features (Heusel et al. 2017); ``KID`` is the unbiased squared MMD with the cubic
polynomial kernel ``k(a, b) = (aᵀb / F + 1)³``, averaged over random subsets (Bińkowski et al.
2018), reported as mean ± std over the subsets. Both are 0 for identical distributions and
grow as the sets differ; both are in the units of one feature space only (see
:mod:`glowapp.evaluation.extractors`). Precision and recall (:mod:`glowapp.evaluation.manifold`)
are measured in the same features: each image goes through the extractor once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from glowapp.evaluation.extractors import FeatureExtractor
from glowapp.evaluation.manifold import DEFAULT_K, Manifold, precision_recall

__all__ = ["KID_SUBSETS", "KID_SUBSET_SIZE", "Quality", "SampleQuality", "check_set_size"]

KID_SUBSETS = 100
"""Random subsets KID is averaged over."""

KID_SUBSET_SIZE = 1000
"""Images per KID subset (fewer when a set is smaller)."""


@dataclass(frozen=True)
class Quality:
    """FID, KID (mean and std over subsets), precision and recall of one image set against the
    real set."""

    fid: float
    kid: float
    kid_std: float
    precision: float
    recall: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def check_set_size(count: int, what: str, extractor: FeatureExtractor) -> None:
    """FID needs more images than feature dimensions (a full-rank covariance ``[F, F]``).

    Raises:
        ValueError: ``count`` ≤ ``F``, naming ``what`` (e.g. "samples") and the least count.
    """
    dim = extractor.num_features
    if count <= dim:
        raise ValueError(
            f"{count} {what} are too few for FID in the {dim}-dimensional {extractor.label}: "
            f"a full-rank covariance needs more images than dimensions; use at least {dim + 1}"
        )


class _Precomputed(nn.Module):
    """Features passed through unchanged: the ``feature`` module FID and KID get, since
    :class:`SampleQuality` extracts each image's features once, itself."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


class SampleQuality:
    """FID, KID, precision and recall of image sets against ``real`` (uint8 ``[N, C, H, W]``), in
    one feature space.

    The real images go through the extractor once, here (their k-NN manifold too); each
    :meth:`score` then measures one set of ``num_fake`` images. KID uses subsets of
    ``min(1000, N, num_fake)`` images, drawn from ``seed`` (the same subsets for every set).
    Precision and recall use ``k`` nearest neighbours (:mod:`glowapp.evaluation.manifold`).

    Raises:
        ValueError: fewer real images or ``num_fake`` than :func:`check_set_size` allows, a
            batch size < 1, or ``k`` outside ``1..min(N, num_fake) − 1``.
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        real: Tensor,
        num_fake: int,
        batch_size: int = 500,
        seed: int = 0,
        k: int = DEFAULT_K,
    ) -> None:
        check_set_size(num_fake, "samples", extractor)
        check_set_size(len(real), "real images", extractor)
        if batch_size < 1:
            raise ValueError(f"the batch size must be at least 1, got {batch_size}")
        if not 1 <= k < min(len(real), num_fake):
            raise ValueError(
                f"precision and recall need 1 <= k < the number of images in each set "
                f"({min(len(real), num_fake)}), got k = {k}"
            )
        self.extractor = extractor
        self.num_fake = num_fake
        self.batch_size = batch_size
        self.seed = seed
        self.k = k
        device = next(extractor.network.parameters()).device
        features = _Precomputed(extractor.num_features)
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False).to(device)
        subset_size = min(KID_SUBSET_SIZE, len(real), num_fake)
        with warnings.catch_warnings():  # that it keeps every feature: ours are [N, F] floats
            warnings.filterwarnings("ignore", message=".*will save all extracted features")
            self.kid = KernelInceptionDistance(
                feature=features,
                subsets=KID_SUBSETS,
                subset_size=subset_size,
                reset_real_features=False,
            ).to(device)
        real_features = self._update(real.split(batch_size), real=True)
        self.real_manifold = Manifold.of(real_features, k)

    @torch.no_grad()
    def _update(
        self, batches: Iterable[Tensor], real: bool, progress: Callable[[int], None] | None = None
    ) -> Tensor:
        """Extract the features of every batch, add them to FID and KID, and return them all
        ``[n, F]`` (on the CPU)."""
        kept = []
        count = 0
        for batch in batches:
            features = self.extractor.network(batch)
            self.fid.update(features, real=real)
            self.kid.update(features, real=real)
            kept.append(features.cpu())
            count += len(batch)
            if progress is not None:
                progress(count)
        return torch.cat(kept) if kept else torch.empty(0, self.extractor.num_features)

    def score(
        self, fake: Iterable[Tensor], progress: Callable[[int], None] | None = None
    ) -> Quality:
        """FID, KID, precision and recall of ``num_fake`` uint8 images ``[b, C, H, W]``, given in
        batches.

        ``progress(k)`` is called with the number of images measured so far.

        Raises:
            ValueError: the batches hold another number of images than ``num_fake``.
        """
        self.fid.reset()
        self.kid.reset()
        features = self._update(fake, real=False, progress=progress)
        if len(features) != self.num_fake:
            raise ValueError(f"expected {self.num_fake} images to score, got {len(features)}")
        with torch.random.fork_rng(devices=[]):  # KID's subsets come from the global RNG
            torch.manual_seed(self.seed)
            kid, kid_std = self.kid.compute()
        manifolds = precision_recall(self.real_manifold, Manifold.of(features, self.k))
        return Quality(float(self.fid.compute()), float(kid), float(kid_std), **manifolds.as_dict())
