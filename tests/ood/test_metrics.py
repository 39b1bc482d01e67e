"""AUROC, AUPR, FPR at 95 % TPR and the threshold, against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torchmetrics.functional.classification import binary_auroc

from glowapp.ood import aupr, auroc, batch_typicality, fpr_at_tpr, threshold_at_tpr


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_auroc_counts_pairs_and_half_ties() -> None:
    # candidate 1 beats 0, ties 1, loses to 2; candidate 3 beats all three: (1 + ½ + 0 + 3) / 6
    assert auroc(t(0, 1, 2), t(1, 3)) == pytest.approx(0.75, abs=1e-15)
    assert auroc(t(0, 1), t(2, 3)) == 1.0
    assert auroc(t(2, 3), t(0, 1)) == 0.0


def test_auroc_is_exact_where_torchmetrics_float32_ties() -> None:
    # Scores far outside [0, 1]: torchmetrics would squash them with a sigmoid (all 1.0).
    reference, candidates = t(1e6, 2e6, 3e6), t(2.5e6, 4e6)
    assert auroc(reference, candidates) == pytest.approx(5 / 6, abs=1e-15)


def test_auroc_matches_torchmetrics_and_sklearn_on_random_scores() -> None:
    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(300, generator=generator, dtype=torch.float64).round(decimals=1)
    candidates = (torch.randn(200, generator=generator, dtype=torch.float64) + 0.7).round(
        decimals=1
    )
    labels = torch.cat([torch.zeros(300), torch.ones(200)]).long()
    values = torch.cat([reference, candidates])
    ours = auroc(reference, candidates)
    assert ours == pytest.approx(roc_auc_score(labels.numpy(), values.numpy()), abs=1e-12)
    squashed = values.sigmoid()  # in [0, 1], so torchmetrics reads it as probabilities
    assert ours == pytest.approx(float(binary_auroc(squashed, labels)), abs=1e-5)
    expected = average_precision_score(labels.numpy(), values.numpy())
    assert aupr(reference, candidates) == pytest.approx(expected, abs=1e-5)


def test_aupr_by_hand() -> None:
    # descending: 3 (candidate), 2, 1 (candidate), 0: precision 1 at recall ½, ⅔ at recall 1
    assert aupr(t(0, 2), t(1, 3)) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3, abs=1e-6)


def test_threshold_and_fpr_at_95_tpr() -> None:
    reference = torch.arange(1, 21, dtype=torch.float64)  # 1..20
    # ⌈0.95 · 20⌉ = 19: nineteen of twenty reference scores are <= 19
    assert threshold_at_tpr(reference) == 19.0
    assert fpr_at_tpr(reference, t(18, 19, 20, 25)) == 0.5  # 18 and 19 pass as typical
    assert threshold_at_tpr(torch.arange(1, 41, dtype=torch.float64)) == 38.0


def test_threshold_needs_twenty_reference_scores() -> None:
    with pytest.raises(ValueError, match="has 19 images; a threshold at 95% TPR needs at least 20"):
        threshold_at_tpr(torch.zeros(19))


def test_empty_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one reference and one candidate"):
        auroc(t(), t(1))


def test_batch_typicality_by_hand() -> None:
    # batches of 2 around μ = 0: reference |mean| = 0.5, 0.5; candidates 2.5, 0.0
    reference, candidates = t(0, 1, -1, 0), t(2, 3, -1, 1)
    assert batch_typicality(reference, candidates, 2, 0.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="holds no batch of 5"):
        batch_typicality(reference, candidates, 5, 0.0)
