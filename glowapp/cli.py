"""``glowapp``: LightningCLI for fit/validate/test plus the generation tools.

``glowapp fit|validate|test --config configs/X.yaml [--trainer.devices 2 ...]`` go to
:class:`GlowCLI`; ``glowapp sample|interpolate|inpaint|score|demo`` go to :mod:`glowapp.tools`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.cli import LightningCLI

from glowapp.checkpointing import check_checkpoint_file
from glowapp.runtime import tune_malloc

if TYPE_CHECKING:
    from glowapp.module import GlowModule

LIGHTNING_COMMANDS = {
    "fit": "train a flow (configs/*.yaml; every option overridable, e.g. --trainer.devices 2)",
    "validate": "bits/dim on the validation split of a checkpoint (--ckpt_path P)",
    "test": "bits/dim on the test split of a checkpoint (--ckpt_path P)",
}


class GlowCLI(LightningCLI):
    """LightningCLI with the image shape linked from the DataModule into the injected flow.

    ``--start_over true`` lets a fresh fit reuse a checkpoint folder that holds an earlier run
    (see :class:`glowapp.callbacks.GlowCheckpoint`); after ``test`` it says which bits/dim is which.
    """

    def add_arguments_to_parser(self, parser) -> None:  # type: ignore[no-untyped-def]
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

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads --ckpt_path's hyperparameters right after parsing; check the file
        # first, so a bad one fails in a second with one line instead of an unpickler traceback.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config.get(subcommand, {}).get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in ("last", "best", "hpc", "registry"):
            check_checkpoint_file(ckpt_path)
        super()._parse_ckpt_path()

    def before_fit(self) -> None:
        from glowapp.callbacks import GlowCheckpoint

        if self.config.fit.get("start_over"):
            for callback in self.trainer.checkpoint_callbacks:
                if isinstance(callback, GlowCheckpoint):
                    callback.start_over = True

    def after_test(self) -> None:
        print(test_report(self.model, self.trainer.callback_metrics))


def _channels(image_shape: Sequence[int]) -> int:
    return int(image_shape[0])


def _image_size(image_shape: Sequence[int]) -> list[int]:
    return [int(image_shape[1]), int(image_shape[2])]


def test_report(module: GlowModule, metrics: Mapping[str, Any]) -> str:
    """Which test number is which: the bound, and (if computed) the importance-weighted estimate."""
    variational = module.hparams["dequantization"]["kind"] == "variational"
    kind = (
        "the variational bound −E_q[log p(x + u) − log q(u | x)]"
        if variational
        else "the uniform-dequantisation bound (the papers' estimate)"
    )
    lines = []
    if "test/bpd" in metrics:
        lines.append(
            f"test/bpd    = {float(metrics['test/bpd']):.4f} bits/dim: {kind}, one dequantisation "
            "draw per image"
        )
    if "test/bpd_iw" in metrics:
        lines.append(
            f"test/bpd_iw = {float(metrics['test/bpd_iw']):.4f} bits/dim: the importance-weighted "
            f"estimate over {module.iw_samples} draws per image (tighter; the one to compare "
            "with published bits/dim)"
        )
    return "\n".join(lines)


def _top_level_help() -> str:
    from glowapp.tools import TOOLS

    lines = [
        "usage: glowapp COMMAND [options]   (glowapp COMMAND --help for a command's options)",
        "",
        "commands:",
    ]
    for name, summary in {**LIGHTNING_COMMANDS, **{n: t.summary for n, t in TOOLS.items()}}.items():
        lines.append(f"  {name:<12} {summary}")
    return "\n".join(lines)


def run_lightning(args: list[str]) -> None:
    """Run a LightningCLI subcommand (``args[0]``: fit, validate or test) with glowapp's classes."""
    _glow_cli(args, save_config_kwargs={"overwrite": True})


def instantiate(args: list[str]) -> GlowCLI:
    """The module, DataModule and trainer that ``glowapp fit ARGS`` would build, without running.

    ``args`` are what follows ``fit`` on the command line (``--config``, dotted overrides). Used
    by the scripts under ``bench/``, so they read configs exactly as the CLI does.
    """
    return _glow_cli(args, run=False, save_config_callback=None)


def _glow_cli(args: list[str], **kwargs: Any) -> GlowCLI:
    from glowapp.data import ImageDataModule
    from glowapp.module import GlowModule

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


#: Errors that come from what the user asked for (bad input, config or files): one line, exit 1.
#: Lightning's MisconfigurationException is an impossible combination of trainer options.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    FloatingPointError,
    MisconfigurationException,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``glowapp`` console script.

    Usage errors exit 2 (argparse/jsonargparse); failures caused by the input (files, data,
    configuration values, checkpoints) print one ``glowapp: error: ...`` line and exit 1. Set
    ``GLOWAPP_DEBUG=1`` to see the full traceback instead. glibc's allocator is tuned for
    training first (:func:`glowapp.runtime.tune_malloc`; ``GLOWAPP_TUNE_MALLOC=0`` turns it off).
    """
    from glowapp.data import DatasetNotFoundError

    tune_malloc()

    try:
        return _dispatch(sys.argv[1:] if argv is None else list(argv))
    except (*USER_ERRORS, DatasetNotFoundError) as err:
        if os.environ.get("GLOWAPP_DEBUG"):
            raise
        message = str(err).strip() or type(err).__name__
        print(f"glowapp: error: {message}", file=sys.stderr)
        return 1


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(_top_level_help())
        return 0 if args else 2
    command = args[0]
    if command in LIGHTNING_COMMANDS:
        run_lightning(args)
        return 0
    from glowapp.tools import TOOLS

    if command in TOOLS:
        return TOOLS[command].run(args[1:])
    print(f"glowapp: unknown command {command!r}\n\n{_top_level_help()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
