"""``glowapp fit|validate|test`` end to end on a tiny config: checkpoints that reload with no other
argument, the test report, one run per checkpoint folder, flow overrides, DDP on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.fit_cli import CONFIGS, one_error_line, run_glowapp, tiny_fit_args
from helpers.training import fixed_batch

from glowapp import GlowModule
from glowapp.cli import main
from glowapp.generate import load_module
from glowapp.models import NICE, Glow
from glowapp.training_cli import instantiate

pytestmark = pytest.mark.usefixtures("single_thread")


def saved_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def test_fit_then_validate_and_test_a_checkpoint(
    tmp_path: Path,
    fashion_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = tiny_fit_args(tmp_path, fashion_root)
    assert main(["fit", *args]) == 0, capsys.readouterr().err
    last = tmp_path / "ckpt" / "last.ckpt"
    assert saved_step(last) == 4
    assert any((tmp_path / "ckpt").glob("best-step=*.ckpt"))
    assert (tmp_path / "logs" / "tiny" / "version_0" / "config.yaml").exists()

    # A checkpoint written through the CLI reloads with no other argument, from plain data.
    hparams = torch.load(last, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["flow"]["class_path"] == "glowapp.models.glow.Glow"
    assert hparams["flow"]["init_args"]["image_size"] == [28, 28]
    loaded = GlowModule.load_from_checkpoint(last).eval()
    batch = fixed_batch(loaded)
    with torch.no_grad():
        assert torch.equal(
            loaded.bits_per_dim(batch, noise=False),
            load_module(last).bits_per_dim(batch, noise=False),
        )

    capsys.readouterr()
    assert main(["test", *args, "--ckpt_path", str(last), "--model.iw_samples", "2"]) == 0
    out = capsys.readouterr().out
    bound = next(line for line in out.splitlines() if line.startswith("test/bpd    = "))
    assert bound.endswith(
        "bits/dim: the uniform-dequantisation bound (the papers' estimate), one dequantisation "
        "draw per image"
    )
    assert "test/bpd_iw = " in out and "over 2 draws per image" in out
    assert 7.0 < float(bound.split()[2]) < 9.0

    assert main(["validate", *args, "--ckpt_path", str(last)]) == 0
    assert "val/bpd" in capsys.readouterr().out


def test_one_run_per_checkpoint_folder(
    tmp_path: Path,
    fashion_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A second fresh fit is refused with one line naming the folder and both ways forward;
    ``--start_over true`` starts over cleanly; ``--ckpt_path`` resumes in place."""
    args = tiny_fit_args(tmp_path, fashion_root)
    folder = tmp_path / "ckpt"
    assert main(["fit", *args]) == 0
    first = sorted(p.name for p in folder.iterdir())

    capsys.readouterr()
    assert main(["fit", *args]) == 1
    line = one_error_line(capsys)
    assert f"{folder} already holds a run" in line
    assert f"--ckpt_path {folder / 'last.ckpt'}" in line and "--start_over true" in line
    assert sorted(p.name for p in folder.iterdir()) == first

    assert main(["fit", *args, "--start_over", "true", "--trainer.max_steps", "3"]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert not any("-v" in name for name in names), names
    assert saved_step(folder / "last.ckpt") == 3

    resume = ["--ckpt_path", str(folder / "last.ckpt"), "--trainer.max_steps", "6"]
    assert main(["fit", *args, *resume]) == 0
    assert saved_step(folder / "last.ckpt") == 6
    assert not any("-v" in p.name for p in folder.iterdir())


def test_flow_options_are_overridden_with_short_flags(tmp_path: Path, fashion_root: Path) -> None:
    cli = instantiate(tiny_fit_args(tmp_path, fashion_root, "--model.flow.hidden", "128"))
    flow = cli.model.flow
    assert isinstance(flow, Glow) and flow.init_args["hidden"] == 128
    assert flow.levels[0].layers[1].layers[2].net.net[0].out_channels == 128
    # in_channels and image_size come from the DataModule.
    assert cli.model.image_shape == cli.datamodule.image_shape == (1, 28, 28)

    nice = instantiate(
        ["--config", str(CONFIGS / "nice_mnist.yaml"), "--model.flow.hidden", "16",
         "--data.init_args.root", str(fashion_root), "--trainer.logger", "false",
         "--trainer.callbacks", "[]"]
    )  # fmt: skip
    assert isinstance(nice.model.flow, NICE) and nice.model.flow.init_args["hidden"] == 16


def test_a_flow_argument_the_architecture_lacks_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NICE has no levels: a usage error (exit 2) naming the class and the option."""
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(CONFIGS / "nice_mnist.yaml"), "--model.flow.levels", "2"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "glowapp.models.NICE" in err and "Option 'levels' is not accepted" in err


def test_glowapp_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "sample", "interpolate", "inpaint", "score"):
        assert f"  {command} " in out


def test_ddp_two_cpu_processes_then_test(tmp_path: Path, fashion_root: Path) -> None:
    """`glowapp fit` with strategy=ddp on 2 CPU processes (gloo), then `glowapp test` on its
    checkpoint."""
    args = tiny_fit_args(tmp_path, fashion_root)
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp"]
    fit = run_glowapp("fit", *args, *ddp, cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    last = tmp_path / "ckpt" / "last.ckpt"
    assert saved_step(last) == 4
    test = run_glowapp("test", *args, "--ckpt_path", str(last), cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "test/bpd    = " in test.stdout
