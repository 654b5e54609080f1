"""`quasar status`: who runs the engine, and per subscription the last bar, freshness, gaps and
the last error."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import msgspec

from quasar_tui.cli.common import leaf
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import echo, print_json, print_table
from quasar_tui.core.clock import utc_now
from quasar_tui.engine.progress import short_duration
from quasar_tui.engine.publisher import EngineStatus
from quasar_tui.engine.status import report_dict, status_report
from quasar_tui.sandbox.hosted import HostHealth
from quasar_tui.store.timescale import PolicyJob

_COLUMNS = [
    "id",
    "provider",
    "symbol",
    "common",
    "interval",
    "mode",
    "state",
    "last_bar",
    "age",
    "freshness",
    "gaps",
    "progress",
    "last_error",
]


def register(sub: argparse._SubParsersAction) -> None:
    status = leaf(
        sub,
        "status",
        "engine owner and the freshness of every subscription",
        description="Show which process runs the collector engine on this database (or that "
        "none does), and for every subscription its common symbol (when mapped), last stored "
        "bar, how long ago that bar closed (fresh or stale for its interval), open gaps, "
        "how far a running backfill is (share of its planned range, rows per second, time "
        "left, the provider's remaining rate budget) and the last error. Each provider the "
        "engine runs is shown with its sandbox host: its state (running, restarting, parked: "
        "<why>), isolation, restarts, memory and CPU.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=show_status)


def format_age(seconds: float | None) -> str:
    """3s, 4m05s, 2h10m, 3d04h: short enough for a table column."""
    return "-" if seconds is None else short_duration(seconds)


def engine_line(engine: EngineStatus, now: datetime) -> str:
    owner = engine.owner
    if not engine.running:
        if owner is None:
            return "engine: no engine running"
        return (
            f"engine: no engine running (last: {owner.label}, "
            f"heartbeat {format_age(owner.heartbeat_age(now))} ago)"
        )
    if owner is None:
        return "engine: running (starting up)"
    up = format_age((now - owner.started_at).total_seconds())
    return f"engine: {owner.label}, up {up}, heartbeat {format_age(owner.heartbeat_age(now))} ago"


def provider_line(name: str, seen: dict[str, Any]) -> str:
    """One provider as the engine sees it, with its sandbox host: state, isolation, restarts,
    memory and CPU."""
    detail = f" ({seen['detail']})" if seen.get("detail") else ""
    line = f"provider {name}: {seen.get('state', '?')}{detail}"
    try:
        host = msgspec.convert(seen.get("host"), HostHealth)
    except (msgspec.ValidationError, TypeError):  # not running, or another version's stats
        return line
    return f"{line}; {host.summary()}"


def job_line(job: PolicyJob, now: datetime) -> str:
    """One TimescaleDB policy job: its last run, its last success, and its failures."""
    started = job.last_run_started_at
    last = f"last run {format_age((now - started).total_seconds())} ago" if started else "never run"
    success = job.last_successful_finish
    ok = (
        f"last success {format_age((now - success).total_seconds())} ago"
        if success
        else "no success yet"
    )
    late = " OVERDUE" if job.overdue(now) else ""
    return (
        f"timescaledb job {job.job_id} {job.proc_name} on {job.hypertable or '-'}: {last} "
        f"({job.last_run_status or '-'}), {ok}, {job.total_failures} of {job.total_runs} "
        f"runs failed{late}"
    )


async def show_status(args: argparse.Namespace) -> int:
    now = utc_now()
    async with database_from_args(args) as db:
        report = await status_report(db, now=now)
    engine = report.engine
    if args.json:
        print_json(report_dict(report, now))
        return 0
    echo(engine_line(engine, now))
    if engine.running:
        for name, seen in sorted((engine.stats.get("providers") or {}).items()):
            if isinstance(seen, dict):
                echo(provider_line(name, seen))
    for job in report.jobs or []:
        echo(job_line(job, now))
    if not report.series:
        echo("no subscriptions; add one with `quasar subscribe NAME SYMBOL --interval I`")
        return 0
    print()
    print_table(
        [
            {
                **s.as_dict(),
                "last_bar": s.sub.last_bar_ts,
                "age": format_age(s.age_seconds),
                "gaps": s.open_gaps,
                "progress": s.backfill.summary() if s.backfill else "-",
            }
            for s in report.series
        ],
        _COLUMNS,
    )
    return 0
