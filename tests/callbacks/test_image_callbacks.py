"""The image callbacks: PNGs in the run directory, TensorBoard images, YAML configuration, and
the errors of glowapp.generate let through unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from glowapp import GlowModule
from glowapp.callbacks import InpaintingCallback, InterpolationCallback, SampleGridCallback
from glowapp.data import ImageDataModule
from glowapp.generate import inpaint, interpolate, make_mask, sample_grid
from glowapp.models import Glow
from glowapp.training_cli import GlowCLI

pytestmark = pytest.mark.usefixtures("single_thread")


class TrainModeProbe(pl.Callback):
    """Records whether the module is in train mode at the start of every training batch."""

    def __init__(self) -> None:
        self.modes: list[bool] = []

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: Any, batch: Any, idx: int
    ) -> None:
        self.modes.append(pl_module.training)


def random_loader(n: int, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator)
    return DataLoader(TensorDataset(images, torch.zeros(n, dtype=torch.long)), batch_size=8)


def tiny_module(**options: Any) -> GlowModule:
    """An untrained Glow for 8x8 grayscale images (2 levels × 1 step, width 8)."""
    flow = Glow(in_channels=1, image_size=8, levels=2, steps=1, hidden=8)
    return GlowModule(flow, **options)


def fit(tmp_path: Path, module: GlowModule, callbacks: list[pl.Callback], **options: Any) -> Path:
    """Train ``module`` on random 8x8 images with ``callbacks``; returns the TensorBoard run dir."""
    logger = TensorBoardLogger(str(tmp_path), name="run")
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=logger,
        callbacks=callbacks,
        limit_val_batches=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        **options,
    )
    trainer.fit(module, random_loader(16, 0), random_loader(8, 1))
    return Path(logger.log_dir)


def test_callbacks_write_pngs_and_log_to_tensorboard(tmp_path: Path) -> None:
    model = tiny_module(warmup_steps=1)
    callbacks = [
        SampleGridCallback(every_n_steps=2, temperatures=[0.0, (0.5, 1.0), 1.0], num_samples=3),
        InterpolationCallback(every_n_steps=2, every_n_epochs=None, num_pairs=2, steps=4),
        InpaintingCallback(every_n_steps=2, mask="left", num_images=3, iterations=2),
    ]
    probe = TrainModeProbe()
    log_dir = fit(tmp_path, model, [*callbacks, probe], max_steps=4)

    images = log_dir / "images"
    cell = 8 + 2
    expected = {  # (columns, rows) of each grid
        "samples": (3, 3),  # a row per temperature
        "interpolation": (4, 2),  # a row per pair
        "inpainting": (3, 3),  # masked input / completion / original
    }
    for name, (columns, rows) in expected.items():
        for step in (2, 4):  # every 2 steps; the epoch ends at those steps too (written once)
            with Image.open(images / f"{name}_step{step:07d}.png") as png:
                assert png.size == (columns * cell + 2, rows * cell + 2)
    assert len(list(images.iterdir())) == 6
    assert callbacks[0].last_path == images / "samples_step0000004.png"
    assert probe.modes == [True] * 4  # the callbacks leave the module in train mode
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())

    events = EventAccumulator(str(log_dir))
    events.Reload()
    tags = events.Tags()["images"]
    assert sorted(tags) == ["images/inpainting", "images/interpolation", "images/samples"]
    assert [event.step for event in events.Images("images/samples")] == [2, 4]


def test_sample_callback_reuses_its_noise(tmp_path: Path) -> None:
    model = tiny_module().eval()
    callback = SampleGridCallback(num_samples=2, seed=5)
    trainer = pl.Trainer(accelerator="cpu", logger=False, default_root_dir=str(tmp_path))
    first = callback.render(trainer, model)
    noise = callback._noise
    assert torch.equal(callback.render(trainer, model), first)
    assert callback._noise is noise


def test_callbacks_check_their_own_arguments() -> None:
    with pytest.raises(ValueError, match="every_n_steps must be a positive integer or None, got 0"):
        SampleGridCallback(every_n_steps=0)
    with pytest.raises(ValueError, match="num_pairs must be at least 1, got 0"):
        InterpolationCallback(num_pairs=0)
    with pytest.raises(ValueError, match="num_images must be at least 1, got 0"):
        InpaintingCallback(num_images=0)


def test_sample_callback_lets_the_sampling_error_through(tmp_path: Path) -> None:
    model = tiny_module().eval()
    trainer = pl.Trainer(accelerator="cpu", logger=False, default_root_dir=str(tmp_path))
    for callback, bad in (
        (SampleGridCallback(temperatures=[0.7, -1.0]), lambda: sample_grid(model, [0.7, -1.0], 8)),
        (SampleGridCallback(num_samples=0), lambda: sample_grid(model, [0.7], 0)),
    ):
        with pytest.raises(ValueError) as expected:
            bad()
        with pytest.raises(ValueError) as info:
            callback.render(trainer, model)
        assert str(info.value) == str(expected.value)


@pytest.mark.parametrize(
    ("callback", "call"),
    [
        (
            InterpolationCallback(every_n_steps=1, steps=1),
            lambda m, x: interpolate(m, x[:4], x[4:8], steps=1),
        ),
        (
            InterpolationCallback(every_n_steps=1, mode="cubic"),
            lambda m, x: interpolate(m, x[:4], x[4:8], mode="cubic"),
        ),
        (
            InpaintingCallback(every_n_steps=1, iterations=-1),
            lambda m, x: inpaint(m, x, make_mask("center", (8, 8)), iterations=-1),
        ),
        (
            InpaintingCallback(every_n_steps=1, mask="left", fraction=1.5),
            lambda m, x: make_mask("left", (8, 8), 1.5),
        ),
    ],
)
def test_image_callbacks_let_the_functions_error_out_of_fit(
    tmp_path: Path, callback: pl.Callback, call: Any
) -> None:
    model = tiny_module()
    with pytest.raises(ValueError) as expected:
        call(model, torch.zeros(8, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError) as info:
        fit(tmp_path, model, [callback], max_steps=1)
    assert str(info.value) == str(expected.value)
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").rglob("*.png"))


def test_callbacks_are_configurable_from_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # anything the CLI writes by default stays in tmp_path
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
model:
  flow:
    class_path: glowapp.models.Glow
    init_args: {{levels: 2, steps: 1, hidden: 8}}
data:
  class_path: glowapp.data.FashionMNISTDataModule
  init_args: {{root: {tmp_path / "data"}, download: false}}
trainer:
  logger: false
  callbacks:
    - class_path: glowapp.callbacks.SampleGridCallback
      init_args: {{every_n_steps: 100, temperatures: [0.0, 0.7, [0.5, 1.0]], num_samples: 4}}
    - class_path: glowapp.callbacks.InterpolationCallback
      init_args: {{every_n_epochs: 2, mode: spherical, steps: 6}}
    - class_path: glowapp.callbacks.InpaintingCallback
      init_args: {{mask: random, fraction: 0.3, iterations: 50}}
"""
    )
    cli = GlowCLI(
        GlowModule,
        ImageDataModule,
        subclass_mode_data=True,
        args=["--config", str(config)],
        run=False,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
    found = {type(c): c for c in cli.trainer.callbacks}
    samples = found[SampleGridCallback]
    assert samples.every_n_steps == 100 and samples.num_samples == 4
    assert samples.temperatures == [0.0, 0.7, [0.5, 1.0]]
    interpolation = found[InterpolationCallback]
    assert (interpolation.every_n_epochs, interpolation.mode, interpolation.steps) == (
        2,
        "spherical",
        6,
    )
    inpainting = found[InpaintingCallback]
    assert (inpainting.mask, inpainting.fraction, inpainting.iterations) == ("random", 0.3, 50)
