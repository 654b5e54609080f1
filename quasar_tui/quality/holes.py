"""The gap report: every hole in a stored series, judged by its market's calendar.

A hole is a run of bars the calendar expects between two stored bars and nothing stored for
them; weekends, holidays and nights are not holes. Its state comes from what the engine
recorded: `open` (known, not tried yet), `filling` (a collection run is on it now), `failed`
(tried; the last error says why), `unfillable` (the provider had nothing for it) and, with
`include_filled`, `filled` (a recorded gap since filled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from quasar_tui.core.intervals import Interval
from quasar_tui.quality.calendars import ALWAYS, Calendar, calendar, calendar_name_for
from quasar_tui.store.database import Database
from quasar_tui.store.read import Reader
from quasar_tui.store.series import Series, resolve

# What the engine recorded about spans of one series: gap rows and whether a run is going.
_RECORDS = """
    SELECT start_ts, end_ts, attempts, last_error, resolved_at, resolution
      FROM gaps
     WHERE provider = $1 AND symbol = $2 AND interval = $3
"""
_RUNNING = """
    SELECT EXISTS (SELECT 1 FROM collection_runs
                    WHERE provider = $1 AND symbol = $2 AND interval = $3 AND status = 'running')
"""
# Subscribed series with the calendar each trades on: the override, else its asset's exchange.
_SUBSCRIBED = """
    SELECT DISTINCT s.provider, s.symbol, s.interval, s.calendar, a.exchange, a.asset_class,
           m.common_symbol
      FROM subscriptions s
      JOIN assets a ON a.provider = s.provider AND a.symbol = s.symbol
      LEFT JOIN asset_mappings m ON m.provider = s.provider AND m.symbol = s.symbol
     WHERE ($1::text IS NULL OR (s.provider = $1 AND s.symbol = $2))
     ORDER BY s.provider, s.symbol, s.interval
"""


@dataclass(frozen=True)
class Hole:
    """Bars a complete series would hold and this one does not."""

    series: str
    interval: str
    calendar: str
    first_missing: datetime
    last_missing: datetime
    missing: int
    state: str
    detail: str | None = None


@dataclass(frozen=True)
class Tracked:
    """A subscribed series at one interval, with the calendar it trades on."""

    series: Series
    interval: Interval
    calendar: Calendar


async def find_holes(
    db: Database,
    name: str | None = None,
    interval: Interval | str | None = None,
    *,
    include_filled: bool = False,
) -> list[Hole]:
    """Holes of one series (every provider it resolves to) or of every subscribed series."""
    wanted = Interval.parse(interval) if isinstance(interval, str) else interval
    holes: list[Hole] = []
    for tracked in await tracked_series(db, name, wanted):
        holes.extend(await holes_of(db, tracked, include_filled))
    return holes


async def tracked_series(
    db: Database, name: str | None, wanted: Interval | None = None
) -> list[Tracked]:
    """Subscribed series (of one name, or all), each at its subscribed intervals."""
    targets: list[Series | None] = [None] if name is None else list(await resolve(db, name))
    found: list[Tracked] = []
    for target in targets:
        rows = await db.fetch(_SUBSCRIBED, target and target.provider, target and target.symbol)
        for r in rows:
            step = Interval(r["interval"])
            if wanted is not None and step is not wanted:
                continue
            named = r["calendar"] or calendar_name_for(r["exchange"], r["asset_class"]) or ALWAYS
            series = Series(r["provider"], r["symbol"], r["common_symbol"])
            found.append(Tracked(series, step, calendar(named)))
    return found


async def holes_of(db: Database, tracked: Tracked, include_filled: bool) -> list[Hole]:
    series, step, cal = tracked.series, tracked.interval, tracked.calendar
    key = (series.provider, series.symbol, step.value)
    extent = await Reader(db).extent(series, step)
    records = await db.fetch(_RECORDS, *key)
    running = bool(await db.fetchval(_RUNNING, *key))

    def hole(expected: list[datetime], state: str, detail: str | None = None) -> Hole:
        first, last = expected[0], expected[-1]
        return Hole(series.label, step.value, cal.name, first, last, len(expected), state, detail)

    holes = []
    for before, after in extent.jumps if extent else []:
        expected = cal.expected_starts(step, step.next_start(before), after)
        if expected:
            end = step.next_start(expected[-1])
            holes.append(hole(expected, *_state(expected[0], end, records, running)))
    if include_filled:
        for r in records:
            if r["resolution"] == "filled":
                expected = cal.expected_starts(step, r["start_ts"], r["end_ts"])
                if expected:
                    holes.append(hole(expected, "filled"))
    return sorted(holes, key=lambda h: h.first_missing)


def _state(start: datetime, end: datetime, records: list, running: bool) -> tuple[str, str | None]:
    """What the engine knows of the span [start, end)."""
    overlapping = [r for r in records if r["start_ts"] < end and r["end_ts"] > start]
    if any(r["resolution"] == "empty" for r in overlapping):
        return "unfillable", "the provider had no data for it"
    failed = [r for r in overlapping if r["resolved_at"] is None and r["attempts"] > 0]
    if running:
        return "filling", None
    if failed:
        return "failed", failed[-1]["last_error"] or "retries ran out"
    return "open", None
