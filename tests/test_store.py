"""The database layer: migrations, the embedded server, `quasar db info`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import asyncpg
import pytest
from helpers import requires_embedded

from quasar_tui.store import migrations
from quasar_tui.store.database import Database
from quasar_tui.store.server import default_data_dir


async def test_migrations_are_recorded_once_and_rerun_is_a_no_op(db: Database) -> None:
    async with db.pool.acquire() as conn:
        again = await migrations.migrate(conn)
        recorded = await migrations.applied_migrations(conn)
    assert again == []
    versions = [m.version for m in recorded]
    assert versions == sorted(set(versions))
    assert versions == sorted({m.version for m in migrations.bundled_migrations()})


@requires_embedded
async def test_plain_postgres_gets_the_plain_variant(db: Database) -> None:
    info = await db.info()
    assert info.timescaledb is None
    variants = {m.name: m.variant for m in info.migrations}
    assert variants["time_indexes"] == "plain"
    indexes = {r["indexname"] for r in await db.fetch("SELECT indexname FROM pg_indexes")}
    assert "historical_data_ts_brin" in indexes


async def test_a_failing_migration_leaves_nothing_half_applied(db: Database, monkeypatch) -> None:
    broken = migrations.Migration(999, "broken", None, "CREATE TABLE half (x int); SELEC 1;")
    real = migrations.bundled_migrations()
    monkeypatch.setattr(migrations, "bundled_migrations", lambda: [*real, broken])
    async with db.pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresSyntaxError):
            await migrations.migrate(conn)
        table = await conn.fetchval("SELECT to_regclass('half') IS NOT NULL")
        recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version=999")
    assert table is False
    assert recorded == 0


async def test_a_migration_that_ends_its_session_raises_its_own_error(
    db: Database, monkeypatch
) -> None:
    """No "released back to the pool" from the lock release hiding what went wrong."""
    fatal = migrations.Migration(
        999,
        "fatal",
        None,
        "CREATE TABLE half (x int); SELECT pg_terminate_backend(pg_backend_pid());",
    )
    real = migrations.bundled_migrations()
    monkeypatch.setattr(migrations, "bundled_migrations", lambda: [*real, fatal])
    conn = await db.connect()
    with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError)):
        await migrations.migrate(conn)
    await conn.close()
    assert await db.fetchval("SELECT to_regclass('half') IS NOT NULL") is False
    assert await db.fetchval("SELECT count(*) FROM schema_migrations WHERE version=999") == 0
    held = await db.fetchval(
        """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
    )
    assert held == 0


@requires_embedded
async def test_text_keys_compare_by_code_point_whatever_the_machines_locale(db: Database) -> None:
    """The embedded cluster is made with the builtin C.UTF-8 locale, not the environment's:
    symbols sort alike everywhere, and text keys (ticks' provider and symbol) compare by
    memcmp rather than strcoll, which was a third of PostgreSQL's cost per stored tick."""
    provider, locale = await db.fetchrow(
        "SELECT datlocprovider::text, datlocale FROM pg_database WHERE datname = current_database()"
    )
    assert (provider, locale) == ("b", "C.UTF-8")
    symbols = ["eth/usd", "BTC/USD", "Ä/USD", "btc/usd"]
    ordered = await db.fetchval("SELECT array_agg(s ORDER BY s) FROM unnest($1::text[]) s", symbols)
    assert ordered == ["BTC/USD", "btc/usd", "eth/usd", "Ä/USD"]
    assert await db.fetchval("SELECT upper('ä')") == "Ä"  # case still knows Unicode


def test_db_info_command_reports_server_and_migrations(run_quasar) -> None:
    result = run_quasar("db", "info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["server"].startswith("external PostgreSQL")
    assert info["version"].split(".")[0].isdigit()
    assert [m["version"] for m in info["migrations"]][:2] == [1, 2]


def test_unreachable_dsn_is_one_clear_line(run_quasar) -> None:
    result = run_quasar("db", "info", "--dsn", "postgresql://u:hunter2@127.0.0.1:9/x")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot connect" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


@requires_embedded
def test_embedded_server_is_started_in_the_data_dir(server_root, run_quasar, quasar_env) -> None:
    del quasar_env["QUASAR_DSN"]
    fresh = server_root / "fresh"
    result = run_quasar("db", "info", "--data-dir", str(fresh))
    assert result.returncode == 0, result.stderr
    assert f"embedded PostgreSQL in {fresh}" in result.stdout
    assert (fresh / "pg" / "PG_VERSION").exists()


def test_roots_default_data_dir_is_one_the_servers_account_can_reach() -> None:
    """Root's home is normally 0700, closed to the account the embedded server runs as."""
    if os.geteuid() != 0:
        pytest.skip("the default for root")
    chosen = default_data_dir()
    assert chosen == Path("/var/lib/quasar") and not chosen.is_relative_to(Path.home())
