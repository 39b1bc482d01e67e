"""``glowapp``: LightningCLI for fit/validate/test plus the generation tools.

``glowapp fit|validate|test --config configs/X.yaml [--trainer.devices 2 ...]`` go to
:class:`GlowCLI` (:mod:`glowapp.training_cli`, which imports Lightning);
``glowapp sample|interpolate|inpaint|manipulate|score|evaluate|demo`` go to
:mod:`glowapp.tools`, which never import Lightning, so they start in about a second.
"""

from __future__ import annotations

import os
import sys

from glowapp.runtime import tune_malloc

LIGHTNING_COMMANDS = {
    "fit": "train a flow (configs/*.yaml; every option overridable, e.g. --trainer.devices 2)",
    "validate": "bits/dim on the validation split of a checkpoint (--ckpt_path P)",
    "test": "bits/dim on the test split of a checkpoint (--ckpt_path P)",
}


def _top_level_help() -> str:
    from glowapp.tools import TOOLS, tool

    lines = [
        "usage: glowapp COMMAND [options]   (glowapp COMMAND --help for a command's options)",
        "",
        "commands:",
    ]
    summaries = {**LIGHTNING_COMMANDS, **{name: tool(name).summary for name in TOOLS}}
    for name, summary in summaries.items():
        lines.append(f"  {name:<12} {summary}")
    return "\n".join(lines)


#: Errors that come from what the user asked for (bad input, config or files): one line, exit 1.
#: (Lightning's MisconfigurationException, an impossible combination of trainer options, is a
#: ValueError.)
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, FloatingPointError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``glowapp`` console script.

    Usage errors exit 2 (argparse/jsonargparse); failures caused by the input (files, data,
    configuration values, checkpoints) print one ``glowapp: error: ...`` line and exit 1. Set
    ``GLOWAPP_DEBUG=1`` to see the full traceback instead. glibc's allocator is tuned for
    training first (:func:`glowapp.runtime.tune_malloc`; ``GLOWAPP_TUNE_MALLOC=0`` turns it off).
    """
    from glowapp.data.sources import DatasetNotFoundError

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
        from glowapp.training_cli import run_lightning

        run_lightning(args)
        return 0
    from glowapp.tools import TOOLS, tool

    if command in TOOLS:
        return tool(command).run(args[1:])
    print(f"glowapp: unknown command {command!r}\n\n{_top_level_help()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
