"""TimescaleDB decisions, checked with the catalogue answers a real server gives (TimescaleDB
cannot be installed on the test server): preloaded or not, and when Quasar prunes ticks itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import requires_embedded

from quasar_tui.store.database import Database
from quasar_tui.store.timescale import PolicyJob, decide, prune_expired_ticks, retention_is_ours

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def retention_job(**stats) -> PolicyJob:
    base = dict(
        job_id=1002,
        proc_name="policy_retention",
        hypertable="live_ticks",
        schedule=timedelta(days=1),
        last_run_started_at=NOW - timedelta(hours=1),
        last_successful_finish=NOW - timedelta(hours=1),
        last_run_status="Success",
        total_runs=10,
        total_failures=0,
    )
    return PolicyJob(**{**base, **stats})


def test_installed_but_not_preloaded_falls_back_to_plain_with_a_reason() -> None:
    choice = decide(available=True, installed=None, preload="pg_stat_statements")
    assert not choice.use
    assert choice.warn
    assert "shared_preload_libraries" in choice.reason


def test_preloaded_or_already_installed_uses_timescaledb() -> None:
    assert decide(True, None, 'pg_stat_statements, "timescaledb"').use
    assert decide(True, "2.28.3", "").use  # installed in the database: its tables need it
    missing = decide(False, None, "")
    assert not missing.use and not missing.warn


def test_retention_is_quasars_when_the_job_fails_or_is_late() -> None:
    assert retention_is_ours(None, NOW) is None  # plain PostgreSQL: always ours, silently
    assert retention_is_ours([retention_job()], NOW) is None
    failing = retention_job(
        last_successful_finish=None, last_run_status="Failed", total_failures=12
    )
    assert "has not succeeded ever" in (retention_is_ours([failing], NOW) or "")
    late = retention_job(last_successful_finish=NOW - timedelta(days=2, minutes=1))
    assert "has not succeeded since" in (retention_is_ours([late], NOW) or "")
    in_time = retention_job(last_successful_finish=NOW - timedelta(days=1, hours=23))
    assert retention_is_ours([in_time], NOW) is None
    assert "no retention job" in (retention_is_ours([], NOW) or "")


@requires_embedded
async def test_plain_postgres_prunes_expired_ticks(db: Database) -> None:
    await db.execute(
        """INSERT INTO live_ticks (provider, symbol, ts, seq, price)
           VALUES ('P', 'S', now() - interval '31 days', 1, 1.0),
                  ('P', 'S', now() - interval '29 days', 2, 1.0)"""
    )
    assert await prune_expired_ticks(db.pool, 30, NOW) == 1
    assert [r["seq"] for r in await db.fetch("SELECT seq FROM live_ticks")] == [2]


@requires_embedded
def test_db_info_and_status_say_timescaledb_is_off_and_why(run_quasar) -> None:
    info = run_quasar("db", "info")
    assert info.returncode == 0, info.stderr
    assert "timescaledb: off (plain PostgreSQL tables)" in info.stdout
    assert "TimescaleDB is not installed on the server" in info.stdout
    status = run_quasar("status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"timescaledb_jobs": null' in status.stdout
