"""What the Log mode shows: entries from engine events and from Python logging, and where
they go (the Log store, the Log mode, toasts for errors)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from time import monotonic

NOTIFY_GAP = 2.0


@dataclass(frozen=True)
class LogEntry:
    at: datetime
    level: str
    source: str
    message: str


Emit = Callable[[LogEntry], None]


class LogRecordBridge(logging.Handler):
    """Warnings and errors from Python logging into the Log mode: a full-screen app cannot let
    libraries print. (What the engine reports at info level arrives as events, the same way
    for an attached console.)"""

    def __init__(self, emit: Emit, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.WARNING)
        self._emit = emit
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = {"WARNING": "warning", "ERROR": "error", "CRITICAL": "error"}.get(
                record.levelname, "info"
            )
            entry = LogEntry(
                datetime.fromtimestamp(record.created, UTC),
                level,
                record.name,
                record.getMessage(),
            )
            self._loop.call_soon_threadsafe(self._emit, entry)
        except Exception:  # logging must never raise into the caller; Handler reports it
            self.handleError(record)


class ErrorToasts:
    """Errors as toasts, at most one per `gap` seconds: the ones held meanwhile are counted
    in the next ("+3 more in the Log"), so a burst never buries the screen."""

    def __init__(
        self,
        toast: Callable[[str, str], None],
        gap: float = NOTIFY_GAP,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._toast = toast
        self._gap = gap
        self._clock = clock
        self._last = -gap
        self._held = 0

    def __call__(self, entry: LogEntry) -> None:
        now = self._clock()
        if now - self._last < self._gap:
            self._held += 1
            return
        more = f" (+{self._held} more in the Log)" if self._held else ""
        self._held = 0
        self._last = now
        self._toast(f"{entry.message}{more}", entry.source)


class ConsoleLog:
    """Where the console's log entries go: the services' Log store (kept here until the
    services are open), the Log mode's signal and, for engine errors, a toast; and Python
    logging into the same place while the app runs (nothing may print over it)."""

    def __init__(self, publish: Emit, toast_error: Emit) -> None:
        self._publish = publish
        self._toast_error = toast_error
        self._record: Emit | None = None
        self._early: list[LogEntry] = []
        self._bridge: LogRecordBridge | None = None

    def open(self, record: Emit) -> None:
        """The services are open: what came before goes to `record`, then all that follows."""
        for entry in self._early:
            record(entry)
        self._early = []
        self._record = record

    def add(self, entry: LogEntry, notify: bool = True) -> None:
        """An engine event or log line; an error also toasts unless `notify` is False (log
        records do not: the engine reports what the user must see as events)."""
        if self._record is None:
            self._early.append(entry)
        else:
            self._record(entry)
        self._publish(entry)
        if notify and entry.level == "error":
            self._toast_error(entry)

    def bridge_logging(self) -> None:
        self._bridge = LogRecordBridge(partial(self.add, notify=False), asyncio.get_running_loop())
        logging.getLogger().addHandler(self._bridge)

    def unbridge_logging(self) -> None:
        if self._bridge is not None:
            logging.getLogger().removeHandler(self._bridge)
            self._bridge = None
