"""What the Log mode shows: entries from engine events and from Python logging."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


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
