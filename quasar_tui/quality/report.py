"""`quasar quality`: is a series complete and clean, and if not, where and why.

Coverage counts the bars the calendar expects between the first and last stored bar; flags
come from a pass over what is stored (quality/flags.py), run here first so the report is
current; a day's score is the mean of its bars' scores (core/bar_quality.py: 1 for a bar with
no flag, the lowest of its flags' scores otherwise), the score `min_quality` filters bars by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from quasar_tui.core.bar_quality import Flag, score_sql
from quasar_tui.quality.flags import flag_series
from quasar_tui.quality.holes import Tracked, holes_of, tracked_series
from quasar_tui.store.bar_sql import MERGED_BARS
from quasar_tui.store.bars import FAR_FUTURE, FAR_PAST
from quasar_tui.store.database import Database

_FLAG_COUNTS = """
    SELECT {columns} FROM bar_flags WHERE provider = $1 AND symbol = $2 AND interval = $3
""".format(
    columns=", ".join(
        f"count(*) FILTER (WHERE flags & {int(f)} <> 0) AS {(f.name or '').lower()}" for f in Flag
    )
)
# Days with flagged bars, lowest score first: the mean of the day's bar scores (1 unflagged).
_WORST_DAYS = f"""
    SELECT d.day, d.bars, f.flagged, 1 - f.loss / d.bars AS score
      FROM (SELECT (ts AT TIME ZONE 'UTC')::date AS day, count(*) AS bars
              FROM ({MERGED_BARS}) AS merged GROUP BY 1) AS d
      JOIN (SELECT (ts AT TIME ZONE 'UTC')::date AS day, count(*) AS flagged,
                   sum(1 - {score_sql("flags")})::float8 AS loss
              FROM bar_flags WHERE provider = $1 AND symbol = $2 AND interval = $3
             GROUP BY 1) AS f USING (day)
     ORDER BY score, d.day
     LIMIT $8
"""
_STORED_COUNT = f"SELECT count(*) FROM ({MERGED_BARS}) AS merged"


@dataclass(frozen=True)
class DayScore:
    day: date
    bars: int
    flagged: int
    score: float


@dataclass(frozen=True)
class SeriesQuality:
    series: str
    interval: str
    calendar: str
    bars: int
    missing: int
    coverage: float
    flags: dict[str, int] = field(default_factory=dict)
    worst_days: list[DayScore] = field(default_factory=list)


async def quality_report(
    db: Database, name: str | None = None, *, worst: int = 5, full: bool = False
) -> list[SeriesQuality]:
    """Every subscribed series (or those `name` resolves to), at each subscribed interval."""
    tracked = await tracked_series(db, name)
    return [await series_quality(db, t, worst=worst, full=full) for t in tracked]


async def series_quality(
    db: Database, tracked: Tracked, *, worst: int = 5, full: bool = False
) -> SeriesQuality:
    """One series at one interval, its flags brought up to date first (all of them checked
    again with `full`)."""
    series, step = tracked.series, tracked.interval
    await flag_series(db, series, step, tracked.calendar.name, full=full)
    key = (series.provider, series.symbol, step.value)
    select = (*key, FAR_PAST, FAR_FUTURE, True, True)
    bars = int(await db.fetchval(_STORED_COUNT, *select))
    missing = sum(h.missing for h in await holes_of(db, tracked, include_filled=False))
    counts = await db.fetchrow(_FLAG_COUNTS, *key)
    days = await db.fetch(_WORST_DAYS, *select, worst)
    return SeriesQuality(
        series=series.label,
        interval=step.value,
        calendar=tracked.calendar.name,
        bars=bars,
        missing=missing,
        coverage=round(bars / (bars + missing), 6) if bars + missing else 0.0,
        flags={Flag[k.upper()].label: v for k, v in dict(counts or {}).items() if v},
        worst_days=[DayScore(d["day"], d["bars"], d["flagged"], d["score"]) for d in days],
    )
