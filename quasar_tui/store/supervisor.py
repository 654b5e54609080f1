"""Keeps the embedded PostgreSQL running under a process that uses it.

If the postmaster dies (kill -9, OOM killer), the supervisor starts it again (or joins the one
another Quasar process already restarted) with capped exponential backoff, and points the pool at
it. It logs one line per state change (down, still failing with a new reason, back up), never one
per retry; asyncpg's per-retry pool warning loses its traceback and is dropped while the server
is down. Checking costs one small file read a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from quasar_tui.core.errors import DatabaseUnavailableError
from quasar_tui.store.embedded import EmbeddedServer

if TYPE_CHECKING:  # the database module starts supervisors, so it imports this one
    from quasar_tui.store.database import Database

log = logging.getLogger("quasar.store")

CHECK_PERIOD = 1.0
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
_POOL_LOGGER = "asyncpg.pool"


class _QuietWhileDown(logging.Filter):
    """asyncpg's reconnect warning as one line (no traceback), and none while the supervisor
    reports the outage itself."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Failed to restore the pool"):
            return True
        record.exc_info = None
        record.exc_text = None
        return not self.down


class ServerSupervisor:
    """One task per Database on an embedded server; `start()` and `stop()` bracket it."""

    def __init__(self, db: Database, server: EmbeddedServer) -> None:
        self._db = db
        self._server = server
        self._task: asyncio.Task[None] | None = None
        self._quiet = _QuietWhileDown()
        self.restarts = 0

    def start(self) -> None:
        logging.getLogger(_POOL_LOGGER).addFilter(self._quiet)
        self._task = asyncio.create_task(self._run(), name="embedded-postgres-supervisor")

    async def stop(self) -> None:
        logging.getLogger(_POOL_LOGGER).removeFilter(self._quiet)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_PERIOD)
            if self._server.running() is None:
                await self._recover()

    async def _recover(self) -> None:
        """Restart until the server is back; one log line per state change."""
        down_since = time.monotonic()
        self._quiet.down = True
        log.warning("the embedded PostgreSQL stopped unexpectedly; restarting it")
        delay = FIRST_DELAY
        last_reason = ""
        while True:
            try:
                postmaster = await asyncio.to_thread(self._server.start)
                break
            except DatabaseUnavailableError as exc:
                if str(exc) != last_reason:
                    log.error("cannot restart the embedded PostgreSQL yet: %s (retrying)", exc)
                    last_reason = str(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
        await self._repoint(self._server.dsn(postmaster, _database_of(self._db.dsn)))
        self._quiet.down = False
        self.restarts += 1
        log.warning(
            "the embedded PostgreSQL is running again (down %.1f s)", time.monotonic() - down_since
        )

    async def _repoint(self, dsn: str) -> None:
        """New connections go to the restarted server (its socket dir may differ)."""
        db = self._db
        if dsn != db.dsn:
            db.server = replace(db.server, dsn=dsn)
            db.pool.set_connect_args(dsn)
        await db.pool.expire_connections()


def _database_of(dsn: str) -> str:
    return unquote(urlsplit(dsn).path.lstrip("/"))
