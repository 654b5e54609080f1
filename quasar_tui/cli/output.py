"""Printing results: aligned plain-text tables for people, JSON for scripts.

Everything shown goes through `printable`: names, symbols and errors come from providers and
files, and must not drive the terminal. Standard output is guarded so that a closed pipe or a
full disk ends the command with one line, not a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TextIO

from quasar_tui.core.errors import QuasarError
from quasar_tui.core.text import printable


class OutputError(QuasarError):
    """Standard output cannot be written (disk full, I/O error)."""


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return printable(value)


def echo(text: str, out: TextIO | None = None) -> None:
    """One line of output with every control character escaped."""
    print(printable(text), file=out or sys.stdout)


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None
) -> None:
    """Columns in the given order, left-aligned, one header line."""
    out = out or sys.stdout
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    headers = [c.upper().replace("_", " ") for c in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), file=out)
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(), file=out)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def print_json(value: Any, out: TextIO | None = None) -> None:
    """JSON with non-ASCII escaped, so no control character reaches the terminal raw."""
    print(json.dumps(value, default=_default, indent=2, ensure_ascii=True), file=out or sys.stdout)


class GuardedStdout:
    """Standard output whose write errors other than a closed pipe become an `OutputError`."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        try:
            return self._inner.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None

    def flush(self) -> None:
        try:
            self._inner.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def silence_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        if sys.__stdout__ is not None:  # None: the process was started without one
            os.dup2(devnull, sys.__stdout__.fileno())
    finally:
        os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the process ends
