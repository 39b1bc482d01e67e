"""``glowapp fit|validate|test``: LightningCLI with glowapp's module, DataModules and checks.

Only these commands import Lightning; :mod:`glowapp.cli` imports this module for them alone.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from glowapp.callbacks.checkpoint import GlowCheckpoint, earlier_run, refusal
from glowapp.checkpointing import check_checkpoint_file
from glowapp.data import ImageDataModule
from glowapp.module import GlowModule

__all__ = ["GlowCLI", "instantiate", "run_lightning", "test_report"]

#: Keywords LightningCLI accepts for --ckpt_path besides a file.
_CKPT_KEYWORDS = ("last", "best", "hpc", "registry")


class _DropLitLoggerTip(logging.Filter):
    """Lightning advertises its cloud logger on every fit ("💡 Tip: … litlogger"); not ours to show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


for _name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(_DropLitLoggerTip())


class GlowCLI(LightningCLI):
    """LightningCLI with the image shape linked from the DataModule into the injected flow.

    Before anything is built or printed, it checks what would otherwise fail late: a bad
    ``--ckpt_path`` file (one line instead of an unpickler traceback), and a fresh ``fit`` into
    a checkpoint folder that already holds a run (see :class:`glowapp.callbacks.GlowCheckpoint`;
    ``--start_over true`` deletes that run first). After ``test`` it says which bits/dim is
    which.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments(
            "data.image_shape",
            "model.flow.init_args.in_channels",
            compute_fn=_channels,
            apply_on="instantiate",
        )
        parser.link_arguments(
            "data.image_shape",
            "model.flow.init_args.image_size",
            compute_fn=_image_size,
            apply_on="instantiate",
        )
        parser.add_argument(
            "--start_over",
            type=bool,
            default=False,
            help="fit: delete the checkpoints of an earlier run in the checkpoint folder first",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and ckpt_path not in _CKPT_KEYWORDS:
            # LightningCLI unpickles --ckpt_path's hyper-parameters right after this.
            check_checkpoint_file(ckpt_path)
        if subcommand == "fit" and not ckpt_path and not config.get("start_over"):
            for dirpath in _checkpoint_folders(config.get("trainer", {}).get("callbacks")):
                earlier = earlier_run(dirpath)
                if earlier:
                    raise FileExistsError(refusal(dirpath, earlier))

    def before_fit(self) -> None:
        if self.config.fit.get("start_over"):
            for callback in self.trainer.checkpoint_callbacks:
                if isinstance(callback, GlowCheckpoint):
                    callback.start_over = True

    def after_test(self) -> None:
        print(test_report(self.model, self.trainer.callback_metrics))


def _checkpoint_folders(callbacks: Any) -> list[str]:
    """The ``dirpath`` of every :class:`GlowCheckpoint` among a parsed config's callbacks (each
    a ``class_path``/``init_args`` namespace, or a dict)."""
    folders = []
    for callback in callbacks or []:
        entry = callback.as_dict() if hasattr(callback, "as_dict") else callback
        if not isinstance(entry, Mapping) or not isinstance(entry.get("class_path"), str):
            continue
        module_name, _, name = entry["class_path"].rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), name, None)
        except ImportError:
            continue
        dirpath = (entry.get("init_args") or {}).get("dirpath")
        if isinstance(cls, type) and issubclass(cls, GlowCheckpoint) and dirpath:
            folders.append(str(dirpath))
    return folders


def _channels(image_shape: Sequence[int]) -> int:
    return int(image_shape[0])


def _image_size(image_shape: Sequence[int]) -> list[int]:
    return [int(image_shape[1]), int(image_shape[2])]


def test_report(module: GlowModule, metrics: Mapping[str, Any]) -> str:
    """Which test number is which: the bound, and (if computed) the importance-weighted estimate."""
    kind = module.hparams["dequantization"]["kind"]
    if kind == "gaussian":
        sigma = module.hparams["dequantization"]["sigma"]
        what = (
            f"noisy-image bits/dim (σ = {sigma:g}): the density of noise-augmented images, NOT "
            "comparable with the papers' bits/dim"
        )
    elif kind == "variational":
        what = "bits/dim: the variational bound −E_q[log p(x + u) − log q(u | x)]"
    else:
        what = "bits/dim: the uniform-dequantisation bound (the papers' estimate)"
    lines = []
    if "test/bpd" in metrics:
        lines.append(
            f"test/bpd    = {float(metrics['test/bpd']):.4f} {what}, one dequantisation "
            "draw per image"
        )
    if "test/bpd_iw" in metrics:
        lines.append(
            f"test/bpd_iw = {float(metrics['test/bpd_iw']):.4f} bits/dim: the importance-weighted "
            f"estimate over {module.iw_samples} draws per image (tighter; the one to compare "
            "with published bits/dim)"
        )
    return "\n".join(lines)


def run_lightning(args: list[str]) -> None:
    """Run a LightningCLI subcommand (``args[0]``: fit, validate or test) with glowapp's classes.

    Raises:
        ValueError: an impossible combination of trainer options (Lightning's
            ``MisconfigurationException``, re-raised with its message).
    """
    try:
        _glow_cli(args, save_config_kwargs={"overwrite": True})
    except MisconfigurationException as err:
        raise ValueError(str(err)) from err


def instantiate(args: list[str]) -> GlowCLI:
    """The module, DataModule and trainer that ``glowapp fit ARGS`` would build, without running.

    ``args`` are what follows ``fit`` on the command line (``--config``, dotted overrides). Used
    by the scripts under ``bench/``, so they read configs exactly as the CLI does.
    """
    return _glow_cli(args, run=False, save_config_callback=None)


def _glow_cli(args: list[str], **kwargs: Any) -> GlowCLI:
    with warnings.catch_warnings():
        # LightningCLI warns when it is given args while sys.argv has some too: here sys.argv is
        # the console script's own command line (or a bench script's), which args replaces.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return GlowCLI(
            GlowModule,
            ImageDataModule,
            subclass_mode_data=True,
            args=args,
            auto_configure_optimizers=False,
            **kwargs,
        )
