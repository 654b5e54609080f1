"""The first thing a console start paints, before its imports (a second or more on a busy
machine) and the database: "opening..." on the terminal's alternate screen.

Textual draws on that same alternate screen (through `sys.__stderr__`) and leaves it on exit,
so nothing of this stays in the user's scrollback. Until Textual takes over, the first write to
`sys.stderr` (a usage error, a traceback) leaves the alternate screen before it is written, so
no message is lost with it. Nothing here imports more than the standard library: it runs before
everything else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, Any

OPENING = "Quasar: opening..."
_ENTER = "\x1b[?1049h\x1b[H\x1b[2J"
_LEAVE = "\x1b[?1049l"
# The options of the bare `quasar` command that open the console; anything else on the command
# line (a subcommand, --daemon, --help, --version, a typo) means no painting.
CONSOLE_FLAGS = frozenset({"--demo", "--no-animation"})
CONSOLE_OPTIONS = frozenset({"--dsn", "--data-dir", "--fps", "--keymap", "--log-format"})


def opens_console(argv: Sequence[str]) -> bool:
    """Whether `argv` (without the program name) opens the console; unsure means no."""
    args = iter(argv)
    for arg in args:
        if arg in CONSOLE_FLAGS:
            continue
        if arg.split("=", 1)[0] in CONSOLE_OPTIONS:
            if "=" not in arg and next(args, None) is None:
                return False
            continue
        return False
    return True


class _LeavingStderr:
    """`sys.stderr` while "opening..." shows: the first write goes back to the user's screen."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        drop()
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def paint(argv: Sequence[str]) -> bool:
    """Show "opening..." when `argv` opens the console on a terminal; True when shown."""
    if not opens_console(argv) or not (os.isatty(0) and os.isatty(2)):
        return False
    stream = sys.stderr
    stream.write(f"{_ENTER}{OPENING}")
    stream.flush()
    sys.stderr = _LeavingStderr(stream)
    return True


def handed_over() -> None:
    """Textual owns the screen from now on (and leaves the alternate screen itself)."""
    if isinstance(sys.stderr, _LeavingStderr):
        sys.stderr = sys.stderr.stream


def drop() -> None:
    """Back to the user's screen, when the start ends before Textual took it over."""
    if isinstance(sys.stderr, _LeavingStderr):
        stream = sys.stderr.stream
        sys.stderr = stream
        stream.write(_LEAVE)
        stream.flush()
