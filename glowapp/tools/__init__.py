"""The ``glowapp sample|interpolate|inpaint|manipulate|score|evaluate|demo`` commands, a module each.

:data:`TOOLS` maps each command name to a :class:`~glowapp.tools.common.Tool`;
:func:`glowapp.cli.main` dispatches to ``TOOLS[name].run(argv)`` and lists every ``summary`` in
``glowapp --help``. The commands parse options, read and write files, and call
:mod:`glowapp.generate`, which checks every value and does the math. Exit codes: 0 success,
1 a bad input (a value out of range, a missing or unreadable file, a bad checkpoint, an
unavailable device: one ``glowapp: error: ...`` line on stderr, printed by
:func:`glowapp.cli.main`), 2 a usage error (argparse).
"""

from glowapp.tools import demo, evaluate, inpaint, interpolate, manipulate, sample, score
from glowapp.tools.common import Tool, ToolError

__all__ = ["TOOLS", "Tool", "ToolError"]

TOOLS: dict[str, Tool] = {
    command.TOOL.name: command.TOOL
    for command in (sample, interpolate, inpaint, manipulate, score, evaluate, demo)
}
"""Every generation command, by name."""
