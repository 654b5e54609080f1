"""Rollups: 1h and 1d bars kept derived from a finer stored interval, so a year of 1min bars
reads as 8,760 hours or 365 days without touching 525,600 rows.

Triggers on the bar tables (db/051_rollup_triggers.*.sql) mark the span each write touched
dirty, in the writer's transaction; a reader brings a series' rollups up to date over that
span before it reads them. The writer never waits for a rollup, and a rollup is never older
than the bars it was read after. Rollups hold merged bars (live wins over historical), so only
reads of both sources use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from quasar_tui.core.intervals import Interval
from quasar_tui.store import bar_sql
from quasar_tui.store.bars import FAR_FUTURE, FAR_PAST
from quasar_tui.store.database import Database

LEVELS = (Interval.H1, Interval.D1)

# One refresh of a series' rollups at a time; a second reader waits and finds it done.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2 || ':' || $3, 0))"
_DIRTY = """
    SELECT bars, low, high, version FROM rollup_dirty
     WHERE provider = $1 AND symbol = $2 AND interval = $3
"""
# The spans refreshed, each unless it was widened meanwhile ($4 / $5: tables and versions).
_CLEAN = """
    DELETE FROM rollup_dirty d
     USING unnest($4::text[], $5::bigint[]) AS done(bars, version)
     WHERE d.provider = $1 AND d.symbol = $2 AND d.interval = $3
       AND d.bars = done.bars AND d.version = done.version
"""
_DROP = """
    DELETE FROM bar_rollups
     WHERE provider = $1 AND symbol = $2 AND base = $3 AND interval = $4
       AND ts >= $5 AND ts < $6
"""
# The merged source bars of the span as `level` bars ($10), both sources, oldest first.
_FILL = f"""
    INSERT INTO bar_rollups (provider, symbol, base, interval, ts, open, high, low, close,
                             volume, trades)
    SELECT $1, $2, $3, $10, d.ts, d.open, d.high, d.low, d.close, d.volume, d.trades
      FROM ({bar_sql.derived("merged", Interval.H1, "oldest")}) AS d
"""


def rollup_level(wanted: Interval, base: Interval) -> Interval | None:
    """The coarsest rollup that can give `wanted` bars from `base` bars (itself or bars that
    tile it), or None when none is coarser than `base`."""
    usable = [
        level
        for level in LEVELS
        if bar_sql.divides(base, level) and (level is wanted or bar_sql.divides(level, wanted))
    ]
    return max(usable, key=lambda i: i.seconds) if usable else None


@dataclass(frozen=True)
class _Span:
    low: datetime
    high: datetime


async def refresh(db: Database, provider: str, symbol: str, base: Interval) -> bool:
    """Bring the rollups made from `base` bars of a series up to date; True when there was
    anything to do."""
    async with db.pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK, provider, symbol, base.value)
        rows = await conn.fetch(_DIRTY, provider, symbol, base.value)
        if not rows:
            return False
        span = _Span(min(r["low"] for r in rows), max(r["high"] for r in rows))
        for level in LEVELS:
            if bar_sql.divides(base, level):
                await _rebuild(conn, provider, symbol, base, level, span)
        await conn.execute(
            _CLEAN,
            provider,
            symbol,
            base.value,
            [r["bars"] for r in rows],
            [r["version"] for r in rows],
        )
    return True


async def _rebuild(
    conn: asyncpg.Connection,
    provider: str,
    symbol: str,
    base: Interval,
    level: Interval,
    span: _Span,
) -> None:
    """Every `level` bucket that the dirty span touches, derived again from the source bars
    (a bucket whose bars were all deleted is gone)."""
    low = level.floor(span.low) if span.low > FAR_PAST else FAR_PAST
    high = level.next_start(span.high) if span.high < FAR_FUTURE else FAR_FUTURE
    await conn.execute(_DROP, provider, symbol, base.value, level.value, low, high)
    await conn.execute(
        _FILL, provider, symbol, base.value, low, high, True, True, None, level.delta, level.value
    )
