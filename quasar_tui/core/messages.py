"""Exceptions as the one line that states, statuses, events and logs show."""

from __future__ import annotations

from quasar_tui.core.errors import QuasarError


def describe_error(exc: BaseException) -> str:
    """One line for an error event or a run record: the type and the first line of the text."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """An exception as one line for states and statuses; a `QuasarError` is already worded
    for the user, so its class name is left out."""
    lines = str(exc).strip().splitlines()
    if isinstance(exc, QuasarError) and lines:
        return lines[0]
    return describe_error(exc)
