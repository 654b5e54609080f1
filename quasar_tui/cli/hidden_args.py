"""Secrets given as arguments hidden from `ps`: every user of the machine can read a process's
arguments (/proc/PID/cmdline) for as long as it runs, a daemon's for days.

The process overwrites each such secret with asterisks of the same length in its own argument
memory, as database clients do with a password option, so `ps` shows `u:*******@host` from
then on. It was visible from the start until then, and stays in the shell's history: QUASAR_DSN
or a passfile, and a prompt or stdin for provider secrets, keep it out altogether.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

_STAT = "/proc/self/stat"
_CMDLINE = "/proc/self/cmdline"
# /proc/PID/stat fields 48 and 49 (arg_start, arg_end), counted after the ") " closing field 2.
_ARG_START = 48 - 3
_ARG_END = 49 - 3


def _argument_memory() -> tuple[int, int] | None:
    """Where this process's arguments are, as `ps` reads them; None where that is not known."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open(_STAT, "rb") as file:
            stat = file.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        start, end = int(fields[_ARG_START]), int(fields[_ARG_END])
        with open(_CMDLINE, "rb") as file:
            shown = file.read()
        if 0 < start < end and ctypes.string_at(start, end - start) == shown:
            return start, end
    return None


def hide_in_arguments(text: str, secrets: list[str]) -> bool:
    """Overwrite each of `secrets` where it stands in `text`, wherever `text` stands in this
    process's arguments (the rest of them is left as it is); False when they could not be
    reached (not Linux), and nothing was changed."""
    shown = os.fsencode(text)
    masked = shown
    for secret in secrets:
        if secret:
            raw = os.fsencode(secret)
            masked = masked.replace(raw, b"*" * len(raw))
    if masked == shown:
        return True
    found = _argument_memory()
    if found is None:
        return False
    start, end = found
    memory = ctypes.string_at(start, end - start)
    at = memory.find(shown)
    while at != -1:
        ctypes.memmove(start + at, masked, len(masked))
        at = memory.find(shown, at + len(shown))
    return True
