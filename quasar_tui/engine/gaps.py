"""Gap records for one historical series: failed chunks, holes found by the audit, resolution.

A gap stays open until a run fetches its span without error. It is then resolved as 'filled'
(bars now exist there) or 'empty' (the provider has nothing there: a holiday, a session break,
history before a listing); the audit never raises an 'empty' span again, so such spans are
requested once, not forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.planner import find_holes
from quasar_tui.quality.calendars import Calendar
from quasar_tui.store.database import Database

#: How often a series' stored bars are scanned for interior holes.
AUDIT_EVERY = timedelta(hours=6)

_OPEN = """
    SELECT id, start_ts, end_ts, reason, attempts, last_error FROM gaps
     WHERE provider = $1 AND symbol = $2 AND interval = $3 AND mode = 'historical'
       AND resolved_at IS NULL
     ORDER BY start_ts"""

# Looks at the newest bars only, so the check stays cheap on long intraday series.
_TRADES_ON_WEEKENDS = """
    SELECT EXISTS (
        SELECT 1 FROM (
            SELECT ts FROM historical_data
             WHERE provider = $1 AND symbol = $2 AND interval = $3
             ORDER BY ts DESC LIMIT 20000) AS recent
         WHERE extract(isodow FROM ts AT TIME ZONE 'UTC') >= 6)"""

_AUDITED_AT = """
    SELECT audited_at FROM series_audits WHERE provider = $1 AND symbol = $2 AND interval = $3"""

_MARK_AUDITED = """
    INSERT INTO series_audits (provider, symbol, interval, audited_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (provider, symbol, interval) DO UPDATE SET audited_at = excluded.audited_at"""

_FIRST_BAR = """
    SELECT min(ts) FROM historical_data WHERE provider = $1 AND symbol = $2 AND interval = $3"""

# Consecutive stored bars further apart than one bar (or than 28 days for monthly bars).
_STEPS = """
    SELECT ts, next_ts FROM (
        SELECT ts, lead(ts) OVER (ORDER BY ts) AS next_ts FROM historical_data
         WHERE provider = $1 AND symbol = $2 AND interval = $3) AS s
     WHERE next_ts > ts + $4::interval"""

# New holes, unless an open gap or an 'empty' one already covers them.
_RECORD_HOLES = """
    INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason)
    SELECT $1, $2, $3, h.s, h.e, h.r
      FROM unnest($4::timestamptz[], $5::timestamptz[], $6::text[]) AS h(s, e, r)
     WHERE NOT EXISTS (
           SELECT 1 FROM gaps g
            WHERE g.provider = $1 AND g.symbol = $2 AND g.interval = $3
              AND g.mode = 'historical' AND g.start_ts <= h.s AND g.end_ts >= h.e
              AND (g.resolved_at IS NULL OR g.resolution = 'empty'))
    RETURNING id, start_ts, end_ts, reason, attempts, last_error"""

# Historical and live gaps alike: 'filled' when the mode's table now has bars in the span.
_RESOLVE = """
    UPDATE gaps g
       SET resolved_at = now(),
           resolution = CASE WHEN EXISTS (
                   SELECT 1 FROM historical_data h
                    WHERE g.mode = 'historical'
                      AND h.provider = g.provider AND h.symbol = g.symbol
                      AND h.interval = g.interval AND h.ts >= g.start_ts AND h.ts < g.end_ts)
                OR EXISTS (
                   SELECT 1 FROM live_data l
                    WHERE g.mode = 'live'
                      AND l.provider = g.provider AND l.symbol = g.symbol
                      AND l.interval = g.interval AND l.ts >= g.start_ts AND l.ts < g.end_ts)
               THEN 'filled' ELSE 'empty' END
     WHERE g.id = ANY($1::bigint[]) AND g.resolved_at IS NULL"""

# A failed chunk widens the open gaps it touches, or becomes a new gap.
_RECORD_FAILURE = """
    WITH widened AS (
        UPDATE gaps
           SET start_ts = least(start_ts, $4), end_ts = greatest(end_ts, $5),
               attempts = attempts + 1, last_error = $6
         WHERE provider = $1 AND symbol = $2 AND interval = $3 AND mode = 'historical'
           AND resolved_at IS NULL AND start_ts <= $5 AND end_ts >= $4
        RETURNING id)
    INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason, attempts, last_error)
    SELECT $1, $2, $3, $4, $5, 'fetch_failed', 1, $6
     WHERE NOT EXISTS (SELECT 1 FROM widened)"""


@dataclass(frozen=True)
class Gap:
    id: int
    start: datetime
    end: datetime
    reason: str
    attempts: int = 0
    last_error: str | None = None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


class SeriesGaps:
    """The gap records of one (provider, symbol, interval) historical series."""

    def __init__(self, db: Database, provider: str, symbol: str, interval: Interval) -> None:
        self.db = db
        self.interval = interval
        self.key = (provider, symbol, interval.value)
        self.audited = False  # whether `audit` scanned the stored bars through this object

    async def open(self) -> list[Gap]:
        return [_gap(r) for r in await self.db.fetch(_OPEN, *self.key)]

    async def trades_on_weekends(self) -> bool:
        """Whether recent stored bars include Saturdays or Sundays (crypto yes, equities no)."""
        return bool(await self.db.fetchval(_TRADES_ON_WEEKENDS, *self.key))

    async def audit(
        self,
        lookback_start: datetime,
        now: datetime,
        *,
        calendar: Calendar | None,
        force: bool = False,
    ) -> list[Gap]:
        """Record holes in the stored bars as gaps (when due, or `force`); return the new ones."""
        audited_at = await self.db.fetchval(_AUDITED_AT, *self.key)
        if not force and audited_at is not None and now - audited_at < AUDIT_EVERY:
            return []
        step = timedelta(days=28) if self.interval.is_calendar else self.interval.delta
        steps = [(r["ts"], r["next_ts"]) for r in await self.db.fetch(_STEPS, *self.key, step)]
        first = await self.db.fetchval(_FIRST_BAR, *self.key)
        holes = find_holes(
            self.interval,
            steps,
            lookback_start=lookback_start,
            first_stored=first,
            calendar=calendar,
        )
        reasons = [
            "lookback" if first is not None and end == first else "audit" for _, end in holes
        ]
        async with self.db.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                _RECORD_HOLES, *self.key, [h[0] for h in holes], [h[1] for h in holes], reasons
            )
            await conn.execute(_MARK_AUDITED, *self.key, now)
        self.audited = True
        return [_gap(r) for r in rows]

    async def resolve(self, ids: list[int]) -> None:
        """Close gaps whose span was fetched without error: 'filled' or 'empty'."""
        await resolve_gaps(self.db, ids)

    async def mark(self, start: datetime, end: datetime, reason: str) -> bool:
        """Record a span to fetch at the next run (a hole the user asked to backfill);
        False when an open gap, or a span the provider had nothing for, covers it."""
        rows = await self.db.fetch(_RECORD_HOLES, *self.key, [start], [end], [reason])
        return bool(rows)

    async def record_failure(self, start: datetime, end: datetime, error: str) -> None:
        await self.db.execute(_RECORD_FAILURE, *self.key, start, end, error)


def _gap(record: asyncpg.Record) -> Gap:
    return Gap(
        record["id"],
        record["start_ts"],
        record["end_ts"],
        record["reason"],
        record["attempts"],
        record["last_error"],
    )


async def resolve_gaps(db: Database, ids: list[int]) -> None:
    """Close open gaps (historical or live) whose span was fetched without error."""
    if ids:
        await db.execute(_RESOLVE, ids)
