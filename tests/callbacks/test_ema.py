"""EMA weights: the exact average, buffers kept intact, used for validation, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers.trainers import quiet_trainer
from helpers.training import fashion_data, fixed_batch, tiny_module
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from glowapp import GlowModule
from glowapp.callbacks import EMA, SampleGridCallback

pytestmark = pytest.mark.usefixtures("single_thread")


class RecordWeights(Callback):
    """Keeps a copy of the live floating-point state after every optimizer step."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        self.states.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


def expected_average(states: list[dict[str, torch.Tensor]], ema: EMA) -> dict[str, torch.Tensor]:
    average = {k: v.clone() for k, v in states[0].items()}
    for n, state in enumerate(states[1:], start=1):
        weight = 1.0 - ema.decay_at(n)
        for k, v in state.items():
            average[k] = torch.lerp(average[k], v, weight) if v.is_floating_point() else v.clone()
    return average


def assert_is_average(
    state: dict[str, torch.Tensor], states: list[dict[str, torch.Tensor]], ema: EMA
) -> None:
    """``state`` is the EMA of the recorded ``states`` (to float32 rounding)."""
    expected = expected_average(states, ema)
    for key, value in state.items():
        torch.testing.assert_close(value, expected[key], rtol=1e-6, atol=1e-7, msg=key)


def test_rejects_a_bad_decay() -> None:
    with pytest.raises(ValueError, match="decay"):
        EMA(decay=1.0)


def test_warmup_ramps_the_decay() -> None:
    ema = EMA(decay=0.999)
    assert ema.decay_at(0) == pytest.approx(0.1)
    assert ema.decay_at(90) == pytest.approx(0.91)
    assert ema.decay_at(10**6) == 0.999
    assert EMA(decay=0.9, warmup=False).decay_at(0) == 0.9


@pytest.mark.parametrize("warmup", [False, True])
def test_checkpoint_holds_the_exact_average_and_resume_continues(
    tmp_path: Path, fashion_root: Path, warmup: bool
) -> None:
    pl.seed_everything(0)
    ema, record = EMA(decay=0.7, warmup=warmup), RecordWeights()
    module = tiny_module()
    # Saved during training (as ModelCheckpoint does), when the live and averaged weights differ.
    saver = ModelCheckpoint(dirpath=tmp_path, filename="ema", every_n_train_steps=6, save_top_k=-1)
    t = quiet_trainer(
        tmp_path,
        max_steps=6,
        limit_val_batches=0,
        enable_checkpointing=True,
        callbacks=[ema, record, saver],
    )
    t.fit(module, datamodule=fashion_data(fashion_root))
    path = tmp_path / "ema.ckpt"
    checkpoint = torch.load(path, weights_only=True)

    assert_is_average(checkpoint["state_dict"], record.states, ema)
    # Constant buffers bit-exact, flags copied, live weights kept for resuming.
    assert all(bool(v) for k, v in checkpoint["state_dict"].items() if k.endswith("initialized"))
    for key in (
        k for k in checkpoint["state_dict"] if k.endswith((".perm", ".sign_s", ".lower_mask"))
    ):
        assert torch.equal(checkpoint["state_dict"][key], record.states[-1][key])
    for key, value in checkpoint["current_model_state"].items():
        assert torch.equal(value, record.states[-1][key]), key
    live, averaged = checkpoint["current_model_state"], checkpoint["state_dict"]
    assert any(not torch.equal(live[k], averaged[k]) for k in live if live[k].is_floating_point())

    # The tools load the averaged weights; the module after fit holds them too.
    loaded = GlowModule.load_from_checkpoint(path).eval()
    batch = fixed_batch(loaded)
    torch.testing.assert_close(
        loaded.bits_per_dim(batch, noise=False), module.eval().bits_per_dim(batch, noise=False)
    )

    # Resume: the live weights continue from current_model_state, the average from state_dict.
    ema2, record2 = EMA(decay=0.7, warmup=warmup), RecordWeights()
    resumed = tiny_module()
    t2 = quiet_trainer(
        tmp_path,
        max_steps=8,
        limit_val_batches=0,
        callbacks=[ema2, record2],
    )
    t2.fit(resumed, datamodule=fashion_data(fashion_root), ckpt_path=str(path))
    assert len(record2.states) == 2
    assert t2.global_step == 8


def test_validation_uses_the_averaged_weights(tmp_path: Path, fashion_root: Path) -> None:
    pl.seed_everything(0)

    class SnapshotAtValidation(Callback):
        def on_validation_epoch_start(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
            self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    ema, record, snapshot = EMA(decay=0.9, warmup=False), RecordWeights(), SnapshotAtValidation()
    module = tiny_module()
    t = quiet_trainer(
        tmp_path,
        max_steps=4,
        val_check_interval=4,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        callbacks=[ema, record, snapshot],
    )
    t.fit(module, datamodule=fashion_data(fashion_root))
    assert_is_average(snapshot.state, record.states, ema)


def test_image_callbacks_render_with_the_averaged_weights(
    tmp_path: Path, fashion_root: Path
) -> None:
    pl.seed_everything(0)

    class Probe(SampleGridCallback):
        def render(self, trainer, module):  # type: ignore[no-untyped-def]
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            return None

    ema, record, probe = (
        EMA(decay=0.8, warmup=False),
        RecordWeights(),
        Probe(every_n_steps=3, every_n_epochs=None),
    )
    module = tiny_module()
    t = quiet_trainer(
        tmp_path,
        max_steps=3,
        limit_val_batches=0,
        callbacks=[ema, record, probe],
    )
    t.fit(module, datamodule=fashion_data(fashion_root))
    assert_is_average(probe.state, record.states, ema)
