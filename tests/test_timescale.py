"""TimescaleDB decisions, checked with the catalogue answers a real server gives (TimescaleDB
cannot be installed on the test server): preloaded or not, and when Quasar prunes ticks itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers import requires_embedded

from quasar_tui.store.database import Database
from quasar_tui.store.timescale import (
    PolicyJob,
    decide,
    prune_expired_ticks,
    read_jobs,
    retention_is_ours,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def retention_job(**stats) -> PolicyJob:
    base = dict(
        job_id=1002,
        proc_name="policy_retention",
        hypertable="live_ticks",
        schedule=timedelta(days=1),
        next_start=NOW + timedelta(hours=23),
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
    new = retention_job(last_run_started_at=None, last_successful_finish=None, total_runs=0)
    assert retention_is_ours([new], NOW) is None  # not due yet
    stalled = retention_job(
        last_run_started_at=None,
        last_successful_finish=None,
        total_runs=0,
        next_start=NOW - timedelta(days=3),
    )
    assert "has not succeeded ever" in (retention_is_ours([stalled], NOW) or "")


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


# The two views as TimescaleDB 2.x documents them (only the columns Quasar reads, plus one it
# does not), with a job that never succeeded: TimescaleDB stores "never" as -infinity.
STAND_IN = """
CREATE SCHEMA timescaledb_information;
CREATE TABLE timescaledb_information.jobs (
    job_id int, application_name text, schedule_interval interval, proc_schema text,
    proc_name text, hypertable_schema text, hypertable_name text, next_start timestamptz);
CREATE TABLE timescaledb_information.job_stats (
    hypertable_schema text, hypertable_name text, job_id int,
    last_run_started_at timestamptz, last_successful_finish timestamptz,
    last_run_status text, job_status text, last_run_duration interval,
    next_start timestamptz, total_runs bigint, total_successes bigint, total_failures bigint);
INSERT INTO timescaledb_information.jobs VALUES
    (3, 'Job History Log Retention Policy [3]', '1 month', '_timescaledb_functions',
     'policy_job_stat_history_retention', NULL, NULL, now()),
    (1002, 'Retention Policy [1002]', '1 day', '_timescaledb_functions',
     'policy_retention', 'public', 'live_ticks', now() + interval '1 hour');
INSERT INTO timescaledb_information.job_stats VALUES
    ('public', 'live_ticks', 1002, now() - interval '1 hour', '-infinity', 'Failed',
     'Scheduled', '1 second', now() + interval '1 hour', 7, 0, 7);
"""


@requires_embedded
async def test_the_job_query_reads_timescaledb_s_views(db: Database) -> None:
    """The SQL against stand-ins for timescaledb_information (TimescaleDB is not installable
    here): internal jobs left out, -infinity read as never."""
    await db.execute(STAND_IN)
    async with db.pool.acquire() as conn:
        jobs = await read_jobs(conn)
    assert [(j.job_id, j.proc_name, j.hypertable) for j in jobs] == [
        (1002, "policy_retention", "live_ticks")
    ]
    job = jobs[0]
    assert job.last_successful_finish is None and job.total_failures == 7
    assert job.schedule == timedelta(days=1)
    assert "has not succeeded ever" in (retention_is_ours(jobs, datetime.now(UTC)) or "")
