"""Quality flags per bar, found by a pass over stored bars (never on the writer's COPY path).

Flags mark bars; nothing is changed or deleted for them. A pass reads a series from where the
last one stopped (less a look-back for the spike test) and replaces the flags of that span in
one transaction, so running it again gives the same flags. Spans written behind where the last
pass stopped (a hole filled, a chunk fetched again) are checked again when the caller names
them; `full` checks everything.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from quasar_tui.core.bar_quality import Flag, score
from quasar_tui.core.clock import Clock, utc_now
from quasar_tui.core.intervals import Interval
from quasar_tui.quality.assigned import calendar_of
from quasar_tui.quality.calendars import ALWAYS, WEEKDAYS_FX
from quasar_tui.store.bar_sql import MERGED_BARS
from quasar_tui.store.bars import FAR_FUTURE, FAR_PAST
from quasar_tui.store.database import Database
from quasar_tui.store.read import Reader
from quasar_tui.store.series import Series

SPIKE_K = 8.0  # a return beyond this many standard deviations of the recent ones
SPIKE_WINDOW = 50  # recent returns the deviation is taken over
SPIKE_MIN = 20  # fewer recent returns than this: no spike test yet


_GRID = {
    "fixed": "date_bin($8::interval, ts, '2000-01-03 00:00+00'::timestamptz) <> ts",
    "month": "date_trunc('month', ts, 'UTC') <> ts AND $8::interval IS NOT NULL",
}

# $1..$7 select the series as the read layer does; $8 the interval, $9 the first bar whose flags
# are replaced, $10 whether zero volume counts (a session market), $11 k for spikes.
_PASS = """
WITH steps AS (
    SELECT ts, open, high, low, close, volume,
           lag(open) OVER w AS p_open, lag(high) OVER w AS p_high, lag(low) OVER w AS p_low,
           lag(close) OVER w AS p_close, lag(volume) OVER w AS p_volume,
           CASE WHEN close > 0 AND lag(close) OVER w > 0
                THEN ln(close / lag(close) OVER w) END AS ret
      FROM ({merged}) AS merged
    WINDOW w AS (ORDER BY ts)
), spread AS (
    SELECT *,
           stddev_samp(ret) OVER recent AS sd,
           count(ret) OVER recent AS n
      FROM steps
    WINDOW recent AS (ORDER BY ts ROWS BETWEEN {window} PRECEDING AND 1 PRECEDING)
)
SELECT ts,
       (CASE WHEN low > high OR low > least(open, close) OR high < greatest(open, close)
             THEN 1 ELSE 0 END)
     | (CASE WHEN least(open, high, low, close) <= 0 THEN 2 ELSE 0 END)
     | (CASE WHEN n >= {minimum} AND sd > 0 AND abs(ret) > $11::float8 * sd THEN 4 ELSE 0 END)
     | (CASE WHEN $10::boolean AND volume = 0 THEN 8 ELSE 0 END)
     | (CASE WHEN open = p_open AND high = p_high AND low = p_low AND close = p_close
              AND volume = p_volume THEN 16 ELSE 0 END)
     | (CASE WHEN {grid} THEN 32 ELSE 0 END) AS flags
  FROM spread
 WHERE ts >= $9
 ORDER BY ts
"""
_PASSES = {
    kind: _PASS.format(merged=MERGED_BARS, grid=grid, window=SPIKE_WINDOW, minimum=SPIKE_MIN)
    for kind, grid in _GRID.items()
}

_CHECKED_TO = """
    SELECT checked_to FROM quality_checks WHERE provider = $1 AND symbol = $2 AND interval = $3
"""
# The start of the look-back: the SPIKE_WINDOW-th bar before where the last pass stopped.
_LOOK_BACK = f"""
    SELECT min(ts) FROM (
        SELECT ts FROM ({MERGED_BARS}) AS merged ORDER BY ts DESC LIMIT {SPIKE_WINDOW + 1}
    ) AS recent
"""
_CLEAR = """
    DELETE FROM bar_flags
     WHERE provider = $1 AND symbol = $2 AND interval = $3 AND ts >= $4 AND ts < $5
"""
# The first bar at or after $4: the spike and repeat tests of the bar after a span rewritten
# depend on the span's last bar.
_NEXT_BAR = f"SELECT min(ts) FROM ({MERGED_BARS}) AS merged"
_SAVE = """
    INSERT INTO bar_flags (provider, symbol, interval, ts, flags)
    SELECT $1, $2, $3, t, f FROM unnest($4::timestamptz[], $5::smallint[]) AS x(t, f)
    ON CONFLICT (provider, symbol, interval, ts) DO UPDATE SET flags = excluded.flags
"""
_FLAGGED = """
    SELECT ts, flags FROM bar_flags
     WHERE provider = $1 AND symbol = $2 AND interval = $3
     ORDER BY ts DESC
     LIMIT $4
"""
_MARK = """
    INSERT INTO quality_checks (provider, symbol, interval, checked_to) VALUES ($1, $2, $3, $4)
    ON CONFLICT (provider, symbol, interval)
    DO UPDATE SET checked_to = excluded.checked_to, checked_at = now()
"""


@dataclass(frozen=True)
class PassResult:
    checked: int
    flagged: int


@dataclass(frozen=True)
class FlaggedBar:
    ts: datetime
    flags: Flag

    @property
    def labels(self) -> str:
        return ", ".join(f.label for f in Flag if f in self.flags)

    @property
    def score(self) -> float:
        return score(self.flags)


async def flagged_bars(
    db: Database, series: Series, interval: Interval, limit: int = 1000
) -> list[FlaggedBar]:
    """The newest `limit` flagged bars of a series, newest first."""
    rows = await db.fetch(_FLAGGED, series.provider, series.symbol, interval.value, limit)
    return [FlaggedBar(r["ts"], Flag(r["flags"])) for r in rows]


async def flag_series(
    db: Database,
    series: Series,
    interval: Interval,
    calendar_name: str,
    *,
    full: bool = False,
    rewritten: Sequence[tuple[datetime, datetime]] = (),
) -> PassResult:
    """Flag the bars stored since the last pass (all of them with `full`), and those of the
    `rewritten` spans [start, end) that lie behind it."""
    key = (series.provider, series.symbol, interval.value)
    since = None if full else await db.fetchval(_CHECKED_TO, *key)
    checked = flagged = 0
    for start, end in rewritten:
        if since is not None and start < since:
            after = await db.fetchval(_NEXT_BAR, *key, end, FAR_FUTURE, True, True)
            upto = interval.next_start(after or since)
            done = await _pass(db, key, interval, calendar_name, start, upto)
            checked, flagged = checked + done.checked, flagged + done.flagged
    done = await _pass(db, key, interval, calendar_name, since or FAR_PAST, FAR_FUTURE)
    return PassResult(checked + done.checked, flagged + done.flagged)


async def _pass(
    db: Database,
    key: tuple[str, str, str],
    interval: Interval,
    calendar_name: str,
    first: datetime,
    end: datetime,
) -> PassResult:
    """Replace the flags of the bars in [first, end), read with the look-back before them."""
    start = FAR_PAST
    if first > FAR_PAST:
        # Re-read SPIKE_WINDOW bars before `first` so the spike test sees its history.
        start = await db.fetchval(_LOOK_BACK, *key, FAR_PAST, first, True, True) or FAR_PAST
    session = calendar_name not in (ALWAYS, WEEKDAYS_FX)
    query = _PASSES["month" if interval is Interval.MO1 else "fixed"]
    select = [*key, start, end, True, True]
    rows = await db.fetch(query, *select, interval.delta, first, session, SPIKE_K)
    flagged = [(r["ts"], r["flags"]) for r in rows if r["flags"]]
    async with db.pool.acquire() as conn, conn.transaction():
        await conn.execute(_CLEAR, *key, first, end)
        await conn.execute(_SAVE, *key, [ts for ts, _ in flagged], [flags for _, flags in flagged])
        if rows and end == FAR_FUTURE:
            await conn.execute(_MARK, *key, rows[-1]["ts"])
    return PassResult(checked=len(rows), flagged=len(flagged))


async def flag_current(db: Database, series: Series, interval: Interval) -> PassResult:
    """Bring a series' flags up to its newest stored bar, by the calendar it trades on: what a
    reader that filters by quality needs first."""
    found = await calendar_of(db, series.provider, series.symbol, interval.value)
    return await flag_series(db, series, interval, found.name if found else ALWAYS)


def judging_reader(db: Database, now: Clock = utc_now) -> Reader:
    """The read layer with flags brought up to date before a read filtered by quality."""
    return Reader(db, now, judge=functools.partial(flag_current, db))
