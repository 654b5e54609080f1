"""Leaving with the terminal: over SSH the terminal can vanish at any moment, and a console
whose terminal is gone must exit (stopping its engine cleanly), never spin on a dead stdin
nor hang on a dead stdout."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
from collections.abc import Callable
from io import TextIOWrapper
from typing import IO, Any, cast

from textual.app import App
from textual.drivers.linux_driver import LinuxDriver

CHECK_SECONDS = 1.0
EXIT_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
_HUNG_UP = select.POLLHUP | select.POLLERR | select.POLLNVAL


def exit_with_terminal(app: App[Any]) -> Callable[[], None]:
    """Exit `app` on SIGHUP or SIGTERM, or when stdin hangs up; returns the undo for unmount.

    The exit status is 128 + the signal, as a shell reports a process the signal ended.
    """
    loop = asyncio.get_running_loop()
    for sig in EXIT_SIGNALS:
        loop.add_signal_handler(sig, app.exit, None, 128 + sig)
    if sys.stdin is not None and os.isatty(0):
        poller = select.poll()
        poller.register(0, select.POLLIN)

        def check() -> None:
            if any(mask & _HUNG_UP for _, mask in poller.poll(0)):
                app.exit(None, 128 + signal.SIGHUP)

        app.set_interval(CHECK_SECONDS, check)

    def undo() -> None:
        for sig in EXIT_SIGNALS:
            loop.remove_signal_handler(sig)

    return undo


class _DroppedWhenGone:
    """The terminal as the driver's output thread writes to it; once writing fails (the
    terminal hung up: EIO), output is dropped. Textual's output thread dies on the first failed
    write, and the app's shutdown then waits for that thread forever."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.gone = False

    def write(self, text: str) -> None:
        if not self.gone:
            try:
                self._file.write(text)
            except OSError:
                self.gone = True

    def flush(self) -> None:
        if not self.gone:
            try:
                self._file.flush()
            except OSError:
                self.gone = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class TerminalDriver(LinuxDriver):
    """Textual's Linux driver, whose output survives the terminal going away."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._file is not None:  # None only in a process without a stderr to draw on
            # The driver's output thread only writes and flushes, which the wrapper does.
            self._file = cast("TextIOWrapper", _DroppedWhenGone(self._file))
