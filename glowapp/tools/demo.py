"""``glowapp demo``: the web demo (:mod:`glowapp.demo`), served until Ctrl+C."""

from __future__ import annotations

import argparse

from rich.console import Console

from glowapp.tools.common import Tool, ToolError, load_model

DEMO_MODULES = ("gradio", "skimage")
"""Top-level modules of the ``demo`` extra that ``glowapp demo`` needs."""


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number in 1..65535, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host`` and ``--port``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default: %(default)s, this machine only; 0.0.0.0 opens the "
        "demo, without authentication, to the network)",
    )
    parser.add_argument(
        "--port", type=_port, default=7860, help="port to serve on (default: %(default)s)"
    )


def run(args: argparse.Namespace, console: Console) -> None:
    """Load the model and serve the demo (or say how to install the ``demo`` extra)."""
    try:
        from glowapp.demo.app import serve
    except ModuleNotFoundError as err:
        if err.name not in DEMO_MODULES:
            raise
        raise ToolError(
            f"the web demo needs {err.name}, which is not installed: pip install 'glowapp[demo]'"
        ) from None
    serve(load_model(args, console).model, args.host, args.port, console)


TOOL = Tool(
    "demo",
    "web demo in the browser: sample, interpolate, inpaint, manipulate and score (glowapp[demo])",
    add_arguments,
    run,
)
