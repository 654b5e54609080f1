"""What `quasar status` reports: who runs the engine, and how fresh each subscription is."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from quasar_tui.core.clock import utc_now
from quasar_tui.core.intervals import Interval
from quasar_tui.engine.progress import BackfillProgress, progress_from
from quasar_tui.engine.publisher import EngineMonitor, EngineStatus
from quasar_tui.quality.assigned import subscribed_calendars
from quasar_tui.quality.calendars import Calendar
from quasar_tui.registry.subscriptions import SubscriptionRecord, SubscriptionStore
from quasar_tui.store.database import Database
from quasar_tui.store.series import common_symbols
from quasar_tui.store.timescale import PolicyJob, policy_jobs

_OPEN_GAPS = """
    SELECT provider, symbol, interval, mode, count(*) AS n FROM gaps
     WHERE resolved_at IS NULL GROUP BY provider, symbol, interval, mode
"""

# How long after a bar closes the next one may still be missing without the series being
# called stale: intraday bars arrive within an interval or two; daily bars skip weekends and
# holidays; weekly and monthly ones are published late by some providers.
_SLACK = {
    Interval.D1: timedelta(days=4),
    Interval.W1: timedelta(days=15),
    Interval.MO1: timedelta(days=62),
}


# With the market's calendar known, only the time a provider takes to publish a bar that
# should exist is allowed: a closed market is never the reason.
_PUBLISHED_WITHIN = {
    Interval.D1: timedelta(hours=12),
    Interval.W1: timedelta(days=3),
    Interval.MO1: timedelta(days=7),
}


def stale_after(interval: Interval) -> timedelta:
    return _SLACK.get(interval, 2 * interval.delta + timedelta(seconds=60))


def freshness(
    interval: Interval,
    last_bar_ts: datetime | None,
    enabled: bool,
    now: datetime,
    calendar: Calendar | None = None,
) -> tuple[float | None, str]:
    """(seconds since the newest stored bar closed, fresh|stale|no data|paused).

    With the series' `calendar`, stale means a bar of a trading session is missing past the
    time its provider takes to publish it; without one, a fixed slack per interval applies."""
    if last_bar_ts is None:
        return None, "paused" if not enabled else "no data"
    after = interval.next_start(last_bar_ts)
    age = now - after
    if not enabled:
        return age.total_seconds(), "paused"
    if calendar is None:
        return age.total_seconds(), "fresh" if age <= stale_after(interval) else "stale"
    grace = _PUBLISHED_WITHIN.get(interval, 2 * interval.delta + timedelta(seconds=60))
    due = calendar.first_expected(interval, after, now)
    missing = due is not None and interval.next_start(due) + grace <= now
    return age.total_seconds(), "stale" if missing else "fresh"


# What `quasar status` shows of a subscription, in this order, before the figures below.
_SHOWN = (
    "id",
    "provider",
    "symbol",
    "interval",
    "mode",
    "enabled",
    "state",
    "last_error",
    "last_run_at",
    "last_bar_ts",
)


@dataclass(frozen=True)
class SeriesStatus:
    """A subscription with how fresh its stored bars are and how many gaps wait for a fill."""

    sub: SubscriptionRecord
    age_seconds: float | None
    freshness: str
    open_gaps: int
    common: str | None = None  # the common symbol it is mapped to
    backfill: BackfillProgress | None = None  # while a historical run is collecting

    def as_dict(self) -> dict[str, Any]:
        """The fields `quasar status` prints (and its JSON carries)."""
        return {
            **{name: getattr(self.sub, name) for name in _SHOWN[:3]},
            "common": self.common,
            **{name: getattr(self.sub, name) for name in _SHOWN[3:]},
            "age_seconds": self.age_seconds,
            "freshness": self.freshness,
            "open_gaps": self.open_gaps,
            "backfill": msgspec.to_builtins(self.backfill) if self.backfill else None,
        }


@dataclass(frozen=True)
class StatusReport:
    engine: EngineStatus
    series: list[SeriesStatus]
    jobs: list[PolicyJob] | None  # TimescaleDB's policy jobs; None without TimescaleDB


async def status_report(db: Database, *, now: datetime | None = None) -> StatusReport:
    now = now or utc_now()
    engine = await EngineMonitor(db).status()
    subs = await SubscriptionStore(db).list()
    gaps = {
        (r["provider"], r["symbol"], r["interval"], r["mode"]): r["n"]
        for r in await db.fetch(_OPEN_GAPS)
    }
    calendars = await subscribed_calendars(db)
    commons = await common_symbols(db)
    running = progress_from(engine.stats) if engine.running else {}
    series = []
    for s in subs:
        market = calendars.get((s.provider, s.symbol, s.interval))
        age, label = freshness(Interval(s.interval), s.last_bar_ts, s.enabled, now, market)
        series.append(
            SeriesStatus(
                s,
                age,
                label,
                gaps.get((s.provider, s.symbol, s.interval, s.mode), 0),
                commons.get((s.provider, s.symbol)),
                running.get(s.id),
            )
        )
    return StatusReport(engine, series, await policy_jobs(db.pool))


def report_dict(report: StatusReport, now: datetime) -> dict[str, Any]:
    """The report as `quasar status --json` prints it and `GET /v1/status` answers it."""
    engine = report.engine
    owner = engine.owner
    return {
        "engine": {
            "running": engine.running,
            "owner": None
            if owner is None
            else {**dataclasses.asdict(owner), "heartbeat_age": owner.heartbeat_age(now)},
            "stats": engine.stats if engine.running else {},
        },
        "subscriptions": [s.as_dict() for s in report.series],
        "timescaledb_jobs": None
        if report.jobs is None
        else [{**dataclasses.asdict(j), "overdue": j.overdue(now)} for j in report.jobs],
    }
