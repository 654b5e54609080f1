"""A console start paints "opening..." before its imports, and any message written before the
console takes the screen is left on the user's screen, never on the vanishing alternate one.
Real `quasar` processes on a pseudo-terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from quasar_tui.cli import build_parser
from quasar_tui.opening import CONSOLE_FLAGS, CONSOLE_OPTIONS, OPENING, opens_console

ENTER, LEAVE = "\x1b[?1049h", "\x1b[?1049l"


def on_terminal(*argv: str) -> tuple[int, str]:
    """Run `quasar ARGV` with a pseudo-terminal on stdin, stdout and stderr; (status, output)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quasar_tui", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process and its terminal are gone
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)


def test_a_console_start_paints_first_and_a_usage_error_stays_on_the_users_screen() -> None:
    status, out = on_terminal("--demo", "--fps", "0")
    assert status == 2
    assert out.startswith(ENTER) and OPENING in out
    # The alternate screen is left before the error is written: the error stays visible.
    assert out.index(LEAVE) < out.index("quasar: error:")
    assert "--fps" in out[out.index(LEAVE) :]


def test_other_commands_paint_nothing() -> None:
    status, out = on_terminal("--version")
    assert status == 0
    assert ENTER not in out and OPENING not in out and "quasar" in out


@pytest.mark.parametrize(
    ("argv", "console"),
    [
        ([], True),
        (["--demo"], True),
        (["--data-dir", "d", "--fps", "5", "--no-animation"], True),
        (["--keymap=k.toml"], True),
        (["--daemon"], False),
        (["status"], False),
        (["--help"], False),
        (["--data-dir"], False),
        (["--demo", "subscriptions"], False),
    ],
)
def test_which_command_lines_open_the_console(argv: list[str], console: bool) -> None:
    assert opens_console(argv) is console


def test_the_console_options_known_before_parsing_are_the_parsers() -> None:
    """Every option of the bare command is either known to open the console or to not."""
    parser = build_parser()
    options = {o for action in parser._actions for o in action.option_strings}
    not_console = {
        "-h",
        "--help",
        "--version",
        "--daemon",
        "--standby",
        "--serve",
        "--serve-cors-origin",
    }
    assert options - not_console == CONSOLE_FLAGS | CONSOLE_OPTIONS
