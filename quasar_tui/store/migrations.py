"""Numbered SQL migrations from `db/` (installed as `quasar_tui.db`), each applied once in
its own transaction.

File names: `NNN_name.sql` always runs; `NNN_name.timescale.sql` runs when TimescaleDB can be
used (installed and preloaded, see `timescale.decide`) and `NNN_name.plain.sql` otherwise.
A `-- requires: EXT` line makes a migration depend on an extension; without it the step is
recorded as skipped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from quasar_tui.store import timescale

log = logging.getLogger("quasar.store")

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
_REQUIRES = re.compile(r"^--\s*requires:\s*([a-z0-9_]+)\s*$", re.MULTILINE)
_LOCK_KEY = 0x5155_4153  # advisory lock so two processes never migrate at once


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    variant: str | None
    sql: str

    @property
    def requires(self) -> list[str]:
        return _REQUIRES.findall(self.sql)


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    variant: str
    applied_at: object


def bundled_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("quasar_tui.db").iterdir():
        match = _NAME.match(entry.name)
        if match:
            version, name, variant = match.groups()
            found.append(Migration(int(version), name, variant, entry.read_text("utf-8")))
    return sorted(found, key=lambda m: (m.version, m.variant or ""))


async def available_extensions(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT name FROM pg_available_extensions")
    return {r["name"] for r in rows}


async def migrate(conn: asyncpg.Connection) -> list[AppliedMigration]:
    """Apply every pending migration; return the ones applied now.

    Give it a dedicated connection, not one from a pool: a pool detaches a connection whose
    session died, and every later call on it then fails with "released back to the pool".
    """
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   variant    text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        pending = [m for m in bundled_migrations() if m.version not in done]
        if not pending:  # every command starts here: skip the extension catalogue then
            return []
        extensions = await available_extensions(conn)
        choice = await timescale.choose(conn)
        if choice.warn:
            log.warning("%s", choice.reason)
        applied: list[AppliedMigration] = []
        for migration in pending:
            if migration.version in done:  # the other variant of this version was applied
                continue
            if migration.variant == "timescale" and not choice.use:
                continue
            if migration.variant == "plain" and choice.use:
                continue
            missing = [ext for ext in migration.requires if ext not in extensions]
            variant = migration.variant or ("skipped" if missing else "all")
            row = await _apply(conn, migration, variant, run_sql=not missing)
            done.add(migration.version)
            applied.append(
                AppliedMigration(migration.version, migration.name, variant, row["applied_at"])
            )
        return applied
    finally:
        # A session that ended (a FATAL error, the server gone) holds no lock any more; an
        # unlock on it would only hide the error that ended it.
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _apply(
    conn: asyncpg.Connection, migration: Migration, variant: str, *, run_sql: bool
) -> asyncpg.Record:
    """The migration and its record in one transaction. Written out rather than `async with
    conn.transaction()`, whose exit on a session that died raises an InterfaceError that hides
    the error which ended the session."""
    tx = conn.transaction()
    await tx.start()
    try:
        if run_sql:
            await conn.execute(migration.sql)
        row = await conn.fetchrow(
            """INSERT INTO schema_migrations (version, name, variant)
               VALUES ($1, $2, $3) RETURNING applied_at""",
            migration.version,
            migration.name,
            variant,
        )
    except BaseException:
        if not conn.is_closed():
            await tx.rollback()
        raise
    await tx.commit()
    assert row is not None
    return row


async def applied_migrations(conn: asyncpg.Connection) -> list[AppliedMigration]:
    rows = await conn.fetch(
        "SELECT version, name, variant, applied_at FROM schema_migrations ORDER BY version"
    )
    return [AppliedMigration(r["version"], r["name"], r["variant"], r["applied_at"]) for r in rows]


async def pending_versions(conn: asyncpg.Connection) -> list[int]:
    """Bundled migrations this database has not applied (empty when it is current)."""
    done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return sorted({m.version for m in bundled_migrations()} - done)
