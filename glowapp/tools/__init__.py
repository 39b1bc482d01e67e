"""The ``glowapp sample|interpolate|inpaint|manipulate|score|ood|evaluate|demo`` commands, a
module each.

:data:`TOOLS` maps each command name to the module that defines it (``TOOL``, a
:class:`~glowapp.tools.common.Tool`); :func:`tool` imports only the one asked for, so a command
pays for its own imports only. :func:`glowapp.cli.main` dispatches to ``tool(name).run(argv)``
and lists every ``summary`` in ``glowapp --help``. The commands parse options, read and write
files, and call :mod:`glowapp.generate`, which checks every value and does the math. Exit codes:
0 success, 1 a bad input (a value out of range, a missing or unreadable file, a bad checkpoint,
an unavailable device: one ``glowapp: error: ...`` line on stderr, printed by
:func:`glowapp.cli.main`), 2 a usage error (argparse).
"""

from __future__ import annotations

import importlib

from glowapp.tools.common import Tool, ToolError

__all__ = ["TOOLS", "Tool", "ToolError", "tool"]

TOOLS: dict[str, str] = {
    name: f"glowapp.tools.{name}"
    for name in (
        "sample",
        "interpolate",
        "inpaint",
        "manipulate",
        "score",
        "ood",
        "evaluate",
        "demo",
    )
}
"""Every generation command's name and module."""


def tool(name: str) -> Tool:
    """The command ``name`` (a key of :data:`TOOLS`), importing its module."""
    return importlib.import_module(TOOLS[name]).TOOL
