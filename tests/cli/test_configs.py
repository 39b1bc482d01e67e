"""Every config in configs/ parses and builds its module, DataModule and trainer the way
``glowapp fit`` would, alone (experiments) or stacked on the quickstart config (overlays)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.fit_cli import CONFIGS, QUICKSTART

from glowapp import GlowModule
from glowapp.cli import main
from glowapp.data import ImageDataModule
from glowapp.training_cli import instantiate

pytestmark = pytest.mark.usefixtures("single_thread")

EXPERIMENTS = sorted(p.name for p in CONFIGS.glob("*.yaml") if "_" in p.stem)
OVERLAYS = sorted(p.name for p in CONFIGS.glob("*.yaml") if "_" not in p.stem)
GPU = torch.cuda.is_available()


def test_the_configs_are_all_here() -> None:
    assert len(EXPERIMENTS) >= 8 and "glow_fashion_mnist.yaml" in EXPERIMENTS
    assert OVERLAYS == ["debug.yaml", "gpu.yaml", "wandb.yaml"]


def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str):  # type: ignore[no-untyped-def]
    """``instantiate(args)`` from ``tmp_path`` (relative outputs land there), checked."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    cli = instantiate(list(args))
    assert isinstance(cli.model, GlowModule) and isinstance(cli.datamodule, ImageDataModule)
    assert cli.model.image_shape == cli.datamodule.image_shape  # linked from the data
    return cli


@pytest.mark.parametrize("config", EXPERIMENTS)
def test_every_experiment_config_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str
) -> None:
    cli = build(tmp_path, monkeypatch, "--config", str(CONFIGS / config))
    spec = cli.model.hparams["flow"]
    assert spec["class_path"].startswith("glowapp.models.")
    assert list(spec["init_args"]["image_size"]) == list(cli.datamodule.image_shape[1:])
    assert cli.trainer.max_steps > 0 or cli.trainer.max_epochs > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_builds_on_a_base_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    overlay: str,
) -> None:
    stack = ["--config", str(QUICKSTART), "--config", str(CONFIGS / overlay)]
    with pytest.raises(SystemExit) as info:
        main(["fit", *stack, "--print_config"])
    assert info.value.code == 0
    printed = capsys.readouterr().out
    assert "glowapp.models.Glow" in printed
    # Without a GPU the gpu overlay's trainer is built on 2 CPU processes; its other settings stay.
    cpu = (
        []
        if GPU or overlay != "gpu.yaml"
        else ["--trainer.accelerator", "cpu", "--trainer.devices", "2"]
    )
    cli = build(tmp_path, monkeypatch, *stack, *cpu)
    trainer = cli.trainer
    if overlay == "debug.yaml":
        assert trainer.max_steps == 20 and trainer.limit_val_batches == 2
    elif overlay == "gpu.yaml":
        assert "accelerator: gpu" in printed and "strategy: ddp" in printed
        assert trainer.precision == "bf16-mixed"
        assert type(trainer.strategy).__name__ == "DDPStrategy"
    else:
        assert type(trainer.logger).__name__ == "WandbLogger"
        assert trainer.logger.save_dir == "outputs"
