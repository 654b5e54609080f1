"""TimescaleDB: whether to use it, how its policy jobs fare, and tick retention when they fail.

TimescaleDB only works when the server preloads it (`shared_preload_libraries`); installed but
not preloaded, `CREATE EXTENSION` fails, so Quasar uses the plain variant and says why. Its
background jobs can fail on some builds (every job failed with `cannot drop portal "" while it
is being set up` on 2.28.3 / PostgreSQL 15.20); when the tick retention job has not succeeded
within twice its schedule, Quasar deletes expired ticks itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

log = logging.getLogger("quasar.store")

EXTENSION = "timescaledb"
RETENTION_PROC = "policy_retention"
TICKS_TABLE = "live_ticks"
FIRST_POLICY_JOB = 1000  # lower ids are TimescaleDB's own (telemetry, job history)

_CATALOGUE = """
    SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1) AS available,
           (SELECT extversion FROM pg_extension WHERE extname = $1) AS installed,
           current_setting('shared_preload_libraries') AS preload
"""
# TimescaleDB records "never" as -infinity; NULL reads better in Python and JSON.
_JOBS = """
    SELECT j.job_id, j.proc_name, j.hypertable_name, j.schedule_interval,
           CASE WHEN isfinite(j.next_start) THEN j.next_start END AS next_start,
           CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END
               AS last_run_started_at,
           CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END
               AS last_successful_finish,
           s.last_run_status, s.total_runs, s.total_failures
      FROM timescaledb_information.jobs j
      LEFT JOIN timescaledb_information.job_stats s USING (job_id)
     WHERE j.job_id >= $1
     ORDER BY j.job_id
"""
_DELETE_EXPIRED = "DELETE FROM live_ticks WHERE ts < now() - make_interval(days => $1)"


@dataclass(frozen=True)
class TimescaleChoice:
    """Whether the timescale migration variants apply, and why (for `db info`)."""

    use: bool
    reason: str
    warn: bool = False  # installed but unusable: worth one warning line


def decide(available: bool, installed: str | None, preload: str) -> TimescaleChoice:
    """The decision from what the catalogue says, kept pure so it can be tested anywhere."""
    if installed is not None:
        return TimescaleChoice(True, f"TimescaleDB {installed} is installed in this database")
    if not available:
        return TimescaleChoice(False, "TimescaleDB is not installed on the server")
    libraries = {lib.strip().strip('"') for lib in preload.split(",")}
    if EXTENSION in libraries:
        return TimescaleChoice(True, "TimescaleDB is available and preloaded")
    return TimescaleChoice(
        False,
        "TimescaleDB is installed on the server but not in shared_preload_libraries, so plain "
        "PostgreSQL tables are used (add it there and restart the server before the first "
        "start of Quasar to use it)",
        warn=True,
    )


async def choose(conn: asyncpg.Connection) -> TimescaleChoice:
    row = await conn.fetchrow(_CATALOGUE, EXTENSION)
    assert row is not None
    return decide(row["available"], row["installed"], row["preload"])


@dataclass(frozen=True)
class PolicyJob:
    """One TimescaleDB policy job and its last run (`timescaledb_information.job_stats`)."""

    job_id: int
    proc_name: str
    hypertable: str | None
    schedule: timedelta
    next_start: datetime | None
    last_run_started_at: datetime | None
    last_successful_finish: datetime | None
    last_run_status: str | None
    total_runs: int
    total_failures: int

    def overdue(self, now: datetime) -> bool:
        """No success within twice the schedule: failed every time, last succeeded too long
        ago, or never run although it was due twice its schedule ago (no scheduler)."""
        if self.last_successful_finish is not None:
            return now - self.last_successful_finish > 2 * self.schedule
        if self.total_failures > 0:
            return True
        return self.next_start is not None and now - self.next_start > 2 * self.schedule

    def summary(self, now: datetime) -> str:
        """One line with absolute times, so it stays true while it is shown (the Dashboard)."""

        def at(ts: datetime | None) -> str:
            return f"{ts:%Y-%m-%d %H:%M} UTC" if ts is not None else "never"

        late = ", OVERDUE" if self.overdue(now) else ""
        return (
            f"{self.proc_name} on {self.hypertable or '-'}: last run {at(self.last_run_started_at)}"
            f" ({self.last_run_status or '-'}), last success {at(self.last_successful_finish)}, "
            f"{self.total_failures} of {self.total_runs} runs failed{late}"
        )


_HAS_JOB_VIEWS = "SELECT to_regclass('timescaledb_information.job_stats')"


async def policy_jobs(conn: asyncpg.Connection | asyncpg.Pool) -> list[PolicyJob] | None:
    """The policy jobs, or None when TimescaleDB is not installed in this database (its
    information views are what is read, so their presence is what is asked)."""
    if await conn.fetchval(_HAS_JOB_VIEWS) is None:
        return None
    return await read_jobs(conn)


async def read_jobs(conn: asyncpg.Connection | asyncpg.Pool) -> list[PolicyJob]:
    """The policy jobs from `timescaledb_information` (TimescaleDB must be installed)."""
    rows = await conn.fetch(_JOBS, FIRST_POLICY_JOB)
    return [
        PolicyJob(
            job_id=r["job_id"],
            proc_name=r["proc_name"],
            hypertable=r["hypertable_name"],
            schedule=r["schedule_interval"],
            next_start=r["next_start"],
            last_run_started_at=r["last_run_started_at"],
            last_successful_finish=r["last_successful_finish"],
            last_run_status=r["last_run_status"],
            total_runs=r["total_runs"] or 0,
            total_failures=r["total_failures"] or 0,
        )
        for r in rows
    ]


def retention_is_ours(jobs: list[PolicyJob] | None, now: datetime) -> str | None:
    """Why Quasar must delete expired ticks itself although TimescaleDB is installed, or None
    when TimescaleDB's job does it (or is not installed: then it is always Quasar's job)."""
    if jobs is None:
        return None
    job = next(
        (j for j in jobs if j.proc_name == RETENTION_PROC and j.hypertable == TICKS_TABLE), None
    )
    if job is None:
        return "TimescaleDB has no retention job for live_ticks"
    if job.overdue(now):
        last = job.last_successful_finish
        since = f"since {last:%Y-%m-%d %H:%M} UTC" if last else "ever"
        return (
            f"TimescaleDB's retention job {job.job_id} has not succeeded {since} "
            f"(schedule {job.schedule}, {job.total_failures} failures)"
        )
    return None


async def prune_expired_ticks(pool: asyncpg.Pool, days: int, now: datetime) -> int:
    """Delete ticks older than `days` unless TimescaleDB's retention job is doing it."""
    async with pool.acquire() as conn:
        jobs = await policy_jobs(conn)
        reason = retention_is_ours(jobs, now)
        if jobs is not None and reason is None:
            return 0
        status = await conn.execute(_DELETE_EXPIRED, days)
    deleted = int(status.split()[-1])
    if reason is not None:
        log.warning("%s: Quasar deleted %d ticks older than %d days itself", reason, deleted, days)
    return deleted
