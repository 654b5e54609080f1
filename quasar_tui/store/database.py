"""The connection pool every layer shares, opened once per process."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from quasar_tui.core.errors import DatabaseUnavailableError
from quasar_tui.store import migrations, timescale
from quasar_tui.store.server import (
    DATABASE_NAME,
    ServerInfo,
    open_server,
    redact_dsn,
    started_server,
)
from quasar_tui.store.supervisor import ServerSupervisor

log = logging.getLogger("quasar.store")


@dataclass(frozen=True)
class DatabaseInfo:
    server: str
    version: str
    timescaledb: str | None
    timescaledb_reason: str  # why TimescaleDB is used or not
    pg_trgm: bool
    migrations: list[migrations.AppliedMigration]


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Database:
    """An asyncpg pool on a migrated database, plus what is needed to describe it."""

    def __init__(self, server: ServerInfo, pool: asyncpg.Pool) -> None:
        self.server = server
        self.pool = pool
        self.supervisor: ServerSupervisor | None = None

    @property
    def dsn(self) -> str:
        return self.server.dsn

    @classmethod
    async def open(
        cls,
        server: ServerInfo,
        *,
        migrate: bool = True,
        min_size: int = 1,
        max_size: int = 10,
    ) -> Database:
        if server.embedded:
            await ensure_database(server.dsn)
        try:
            pool = await asyncpg.create_pool(
                server.dsn,
                min_size=min_size,
                max_size=max_size,
                init=_init_connection,
                command_timeout=60,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailableError(
                f"cannot connect to {redact_dsn(server.dsn)}: {exc}"
            ) from None
        db = cls(server, pool)
        handle = started_server(server.data_dir) if server.data_dir is not None else None
        if server.embedded and handle is not None:
            db.supervisor = ServerSupervisor(db, handle)
            db.supervisor.start()
        if migrate:
            conn = await db.connect()
            try:
                await migrations.migrate(conn)
            finally:
                await conn.close()
        return db

    async def close(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.pool.close()

    async def connect(self) -> asyncpg.Connection:
        """A dedicated connection (LISTEN, advisory locks, COPY sessions)."""
        conn = await asyncpg.connect(self.dsn)
        await _init_connection(conn)
        return conn

    async def info(self) -> DatabaseInfo:
        async with self.pool.acquire() as conn:
            version = await conn.fetchval("SHOW server_version")
            ts = await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            )
            choice = await timescale.choose(conn)
            trgm = await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname='pg_trgm'")
            applied = await migrations.applied_migrations(conn)
        reason = choice.reason
        if ts is None and choice.use:
            reason += ", but this database was migrated before, with plain PostgreSQL tables"
        return DatabaseInfo(self.server.describe(), version, ts, reason, bool(trgm), applied)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self.pool.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self.pool.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.pool.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        return await self.pool.execute(query, *args)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def ensure_database(dsn: str) -> None:
    """Create the database named in the DSN on the embedded server if it is missing."""
    name = urlsplit(dsn).path.lstrip("/") or DATABASE_NAME
    try:
        conn = await asyncpg.connect(with_database(dsn, "postgres"))
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailableError(f"cannot reach the embedded PostgreSQL: {exc}") from None
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be bound; the name is ours (DATABASE_NAME), not user input.
            # Another process may create it first, which is just as good.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def open_database(dsn: str | None, data_dir: Path, **kwargs: Any) -> Database:
    """Resolve the server (embedded or DSN) and return a migrated pool on it."""
    return await Database.open(open_server(dsn, data_dir), **kwargs)
