"""One engine per database: a PostgreSQL advisory lock held on a dedicated connection.

The lock lives as long as that connection, so an engine killed with SIGKILL frees it at once
and `pg_locks` tells whether an engine is running regardless of what `engine_status` says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from quasar_tui.core.clock import utc_now
from quasar_tui.core.errors import QuasarError
from quasar_tui.store.database import Database
from quasar_tui.store.engine_lock import ENGINE_HELD, LOCK_CLASS, LOCK_OBJECT

log = logging.getLogger("quasar.engine")

_TRY_LOCK = "SELECT pg_try_advisory_lock($1, $2)"
_WAIT_LOCK = "SELECT pg_advisory_lock($1, $2)"
# A waiting session whose process is gone (SIGTERM, SIGKILL) must leave the lock's queue soon,
# not take the lock when it frees and hold it until its write to the dead socket fails.
_CHECK_CLIENT = "SET client_connection_check_interval = 1000"
_WAITING = """
    SELECT count(*) FROM pg_locks
     WHERE locktype = 'advisory' AND NOT granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND classid = $1::oid AND objid = $2::oid AND objsubid = 2
"""
_HELD = f"SELECT {ENGINE_HELD}"
_OWNER = "SELECT owner, pid, mode, started_at, heartbeat FROM engine_status WHERE id = 1"


@dataclass(frozen=True)
class EngineOwner:
    """Who runs the engine on this database, as that engine last published it."""

    host: str
    pid: int
    mode: str
    started_at: datetime
    heartbeat: datetime

    @property
    def label(self) -> str:
        return f"{self.mode} on {self.host}:{self.pid}"

    def heartbeat_age(self, now: datetime | None = None) -> float:
        return ((now or utc_now()) - self.heartbeat).total_seconds()


class EngineLockedError(QuasarError):
    """Another engine holds the lock: the console attaches to it, the daemon exits 1 (or
    waits, with --standby)."""

    def __init__(self, owner: EngineOwner | None) -> None:
        self.owner = owner
        super().__init__(f"{self.running}; stop it first, or open the console to attach to it")

    @property
    def running(self) -> str:
        """'an engine is already running on this database: <who>', for callers that say
        their own way out."""
        owner = self.owner
        if owner is None:
            who = "another engine (starting up)"
        else:
            who = f"{owner.label} (heartbeat {owner.heartbeat_age():.0f}s ago)"
        return f"an engine is already running on this database: {who}"


async def read_owner(conn: asyncpg.Connection | Database) -> EngineOwner | None:
    row = await conn.fetchrow(_OWNER)
    return None if row is None else owner_from(row)


def owner_from(row: asyncpg.Record) -> EngineOwner:
    """The owner in an `engine_status` row holding the columns `_OWNER` reads."""
    return EngineOwner(row["owner"], row["pid"], row["mode"], row["started_at"], row["heartbeat"])


async def engines_waiting(conn: asyncpg.Connection | Database) -> int:
    """How many sessions wait for the engine lock (daemons on standby)."""
    return int(await conn.fetchval(_WAITING, LOCK_CLASS, LOCK_OBJECT))


async def engine_running(conn: asyncpg.Connection | Database) -> bool:
    """Whether some session holds the engine lock right now."""
    return bool(await conn.fetchval(_HELD))


class EngineLock:
    """The advisory lock and the connection that holds it."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: asyncpg.Connection | None = None

    @property
    def held(self) -> bool:
        """False once the holding connection is gone (for example the server restarted)."""
        return self._conn is not None and not self._conn.is_closed()

    async def acquire(self, *, wait: bool = False) -> None:
        """Take the lock or raise `EngineLockedError` naming the engine that has it; with
        `wait`, wait (in the server, no polling) until that engine stops and then take it.

        Waiting ends with the connection (cancelling the caller terminates it)."""
        conn = await self._db.connect()
        try:
            got = await conn.fetchval(_TRY_LOCK, LOCK_CLASS, LOCK_OBJECT)
            if not got:
                owner = await read_owner(conn)
                if not wait:
                    raise EngineLockedError(owner)
                log.info(
                    "standby: %s holds the engine lock; waiting to take over when it stops",
                    owner.label if owner else "another engine (starting up)",
                )
                await conn.execute(_CHECK_CLIENT)
                await conn.fetchval(_WAIT_LOCK, LOCK_CLASS, LOCK_OBJECT)
                log.info("standby over: the engine lock is free, starting the engine here")
        except BaseException:
            conn.terminate()  # a wait cut short leaves a query running: no polite close
            raise
        await self._close()
        self._conn = conn

    async def release(self) -> None:
        """Ending the session releases the lock; no separate unlock round trip needed."""
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=2)
            except (asyncpg.PostgresError, OSError) as exc:
                log.debug("closing the lock connection failed: %s", exc)
