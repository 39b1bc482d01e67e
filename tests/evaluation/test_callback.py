"""SampleQualityCallback: FID/KID logged at validation under keys naming the feature space."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
from helpers.generation import tiny_glow
from helpers.trainers import quiet_trainer

from glowapp.callbacks import SampleQualityCallback
from glowapp.data import FashionMNISTDataModule
from glowapp.evaluation import FeatureExtractor, SampleQuality
from glowapp.evaluation.data import load_split
from glowapp.evaluation.report import sample_batches
from glowapp.generate import draw_noise
from glowapp.module import GlowModule


def fit(
    data_root: Path, tmp_path: Path, callback: SampleQualityCallback, side: int = 28
) -> pl.Trainer:
    """Two training steps of a tiny Glow on Fashion-MNIST, validating on 192 images."""
    data = FashionMNISTDataModule(
        root=str(data_root), batch_size=64, train_limit=128, val_limit=192, download=False
    )
    trainer = quiet_trainer(tmp_path, max_steps=2, num_sanity_val_steps=1, callbacks=[callback])
    trainer.fit(tiny_glow(side), data)
    return trainer


def test_logs_fid_and_kid_of_the_validation_images_under_their_feature_space(
    data_root: Path, tmp_path: Path, extractor: FeatureExtractor
) -> None:
    callback = SampleQualityCallback(num_samples=150, temperature=0.7, batch_size=75, seed=2)
    trainer = fit(data_root, tmp_path, callback)
    logged = {key: float(value) for key, value in trainer.callback_metrics.items()}
    # The same measurement by hand: the 192 validation images, the model after its 2 steps
    # (validation runs after the last one), the noise of seed 2 at T = 0.7.
    module = trainer.lightning_module
    assert isinstance(module, GlowModule)
    real, _ = load_split(trainer.datamodule.val_dataset)
    noise = draw_noise(module, 150, seed=2)
    quality = SampleQuality(extractor, real, 150, batch_size=75, seed=2)
    expected = quality.score(sample_batches(module, noise, 0.7, batch_size=75))
    assert logged["val/fid_fashion_mnist"] == pytest.approx(expected.fid, rel=1e-4)
    assert logged["val/kid_fashion_mnist"] == pytest.approx(expected.kid, rel=1e-4)


def test_too_few_samples_fail_before_training(data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="100 samples are too few for FID"):
        fit(data_root, tmp_path, SampleQualityCallback(num_samples=100))


def test_a_model_the_features_do_not_fit_fails_before_training(
    data_root: Path, tmp_path: Path
) -> None:
    callback = SampleQualityCallback(num_samples=150, features="fashion-mnist")
    with pytest.raises(ValueError, match="take 1x28x28 images, but this model makes 1x16x16"):
        fit(data_root, tmp_path, callback, side=16)
