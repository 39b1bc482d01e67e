"""SkipNonFiniteSteps: a non-finite loss or gradient skips the update and is counted (also across
a resume); too many stop training with an error naming the layer and the fixes."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, flat_params, tiny_module
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import Tensor

from glowapp import GlowModule
from glowapp.callbacks import SkipNonFiniteSteps

pytestmark = pytest.mark.usefixtures("single_thread")


def module_with_nans(calls: set[int], monkeypatch: pytest.MonkeyPatch) -> GlowModule:
    """A seeded tiny module whose flow's log-density is NaN on the given (1-based) training-time
    calls."""
    pl.seed_everything(0)
    module = tiny_module()
    real: Callable[..., tuple[Tensor, Tensor | None]] = module.flow.log_prob_and_logits
    count = {"n": 0}

    def sometimes_nan(x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        log_p, logits = real(x, y)
        if torch.is_grad_enabled():
            count["n"] += 1
            if count["n"] in calls:
                return log_p * float("nan"), logits
        return log_p, logits

    monkeypatch.setattr(module.flow, "log_prob_and_logits", sometimes_nan)
    return module


def fit(
    module: GlowModule,
    root: Path,
    data_root: Path,
    callbacks: list[pl.Callback],
    ckpt_path: Path | None = None,
    **options: object,
) -> tuple[pl.Trainer, list[str]]:
    """Fit on 4 batches per epoch (resuming from ``ckpt_path``); the warnings' messages."""
    t = quiet_trainer(root, limit_val_batches=0, callbacks=callbacks, **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(module, datamodule=fashion_data(data_root), ckpt_path=ckpt_path)
    return t, [str(w.message) for w in caught]


def test_rejects_a_negative_maximum() -> None:
    with pytest.raises(ValueError, match="max_skipped_steps must be >= 0"):
        SkipNonFiniteSteps(max_skipped_steps=-1)


def test_nonfinite_loss_step_is_skipped_and_counted(
    tmp_path: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = module_with_nans({3}, monkeypatch)
    skip = SkipNonFiniteSteps()
    before_step: dict[int, Tensor] = {}

    class Snapshot(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
            before_step[trainer.global_step] = flat_params(pl_module).clone()

    _, messages = fit(module, tmp_path, fashion_root, [skip, Snapshot()], max_steps=4)
    assert skip.skipped_steps == 1
    assert any(
        "non-finite loss" in m and "global step 2" in m and "Step skipped (1/20)" in m
        for m in messages
    ), messages
    assert torch.isfinite(flat_params(module)).all()
    # The skipped update left the weights as they were; Lightning still counts the step.
    assert torch.equal(before_step[2], before_step[3])
    assert not torch.equal(before_step[1], before_step[2])


def test_nonfinite_gradient_step_is_skipped(tmp_path: Path, fashion_root: Path) -> None:
    pl.seed_everything(0)
    module = tiny_module()
    weight = module.flow.levels[0].layers[1].layers[2].net.net[0].weight
    steps = {"n": 0}

    def poison_second_step(grad: Tensor) -> Tensor:
        steps["n"] += 1
        return grad * float("inf") if steps["n"] == 2 else grad

    weight.register_hook(poison_second_step)
    skip = SkipNonFiniteSteps()
    _, messages = fit(module, tmp_path, fashion_root, [skip], max_steps=3)
    assert skip.skipped_steps == 1
    assert any("non-finite gradients at global step 1" in m for m in messages), messages
    assert torch.isfinite(flat_params(module)).all()


def test_too_many_nonfinite_steps_stop_with_a_clear_error(
    tmp_path: Path, fashion_root: Path
) -> None:
    pl.seed_everything(0)
    module = tiny_module()
    with torch.no_grad():  # a broken coupling network: NaN everywhere from the first step
        module.flow.levels[0].layers[1].layers[2].net.net[0].bias.fill_(float("nan"))
    t = quiet_trainer(
        tmp_path, max_steps=10, limit_val_batches=0, callbacks=[SkipNonFiniteSteps(2)]
    )
    with (
        pytest.raises(FloatingPointError, match=r"global step 2.*ChannelCoupling") as info,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        t.fit(module, datamodule=fashion_data(fashion_root))
    assert "Step skipped (3/2). Too many non-finite steps: lower the learning rate" in str(
        info.value
    )


def test_the_count_survives_a_resume(
    tmp_path: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = module_with_nans({2}, monkeypatch)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="s", every_n_train_steps=4)
    first = SkipNonFiniteSteps()
    fit(module, tmp_path, fashion_root, [first, saver], max_steps=4, enable_checkpointing=True)
    assert first.skipped_steps == 1
    checkpoint = torch.load(tmp_path / "ckpt" / "s.ckpt", weights_only=True)
    assert {"skipped_steps": 1} in checkpoint["callbacks"].values()

    resumed = module_with_nans({1}, monkeypatch)
    second = SkipNonFiniteSteps()
    _, messages = fit(
        resumed,
        tmp_path,
        fashion_root,
        [second],
        max_steps=6,
        ckpt_path=tmp_path / "ckpt" / "s.ckpt",
    )
    assert second.skipped_steps == 2
    assert any("global step 4" in m and "(2/20)" in m for m in messages), messages
