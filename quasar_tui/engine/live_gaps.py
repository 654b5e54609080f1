"""Gap records of live series: spans the feed did not observe, until REST history fills them.

A live session only knows in memory which spans it still has to fill. The engine resumes a
restarted session after the last stored live bar, which is not enough when newer bars were
written while an older span was still waiting for its fill (fills are rate-limited, one call
per series, and retried with backoff): an engine stopped or killed then would leave that span
empty for good. So each span is recorded in `gaps` (mode 'live') before any later bar of its
series is written, resolved once its fill is committed, and a starting session resumes from the
oldest open one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.gaps import resolve_gaps
from quasar_tui.store.database import Database

_RECORD = """
    INSERT INTO gaps (provider, symbol, interval, mode, start_ts, end_ts, reason)
    SELECT $1, g.s, g.i, 'live', g.b, g.e, 'not_observed'
      FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
           AS g(s, i, b, e)"""

# Every open record of the series inside the span that was filled.
_INSIDE = """
    SELECT id FROM gaps
     WHERE provider = $1 AND symbol = $2 AND interval = $3 AND mode = 'live'
       AND resolved_at IS NULL AND start_ts >= $4 AND end_ts <= $5"""

_OPEN = """
    SELECT symbol, interval, min(start_ts) AS start FROM gaps
     WHERE provider = $1 AND mode = 'live' AND resolved_at IS NULL
     GROUP BY symbol, interval"""

Span = tuple[str, Interval, datetime, datetime]  # symbol, interval, start, end


class LiveGaps:
    """The live gap records of one provider."""

    def __init__(self, db: Database, provider: str) -> None:
        self.db = db
        self.provider = provider

    async def record(self, spans: Iterable[Span]) -> None:
        spans = list(spans)
        if spans:
            columns = [list(c) for c in zip(*spans, strict=True)]
            columns[1] = [Interval(i).value for i in columns[1]]
            await self.db.execute(_RECORD, self.provider, *columns)

    async def resolve(
        self, symbol: str, interval: Interval, start: datetime, end: datetime
    ) -> None:
        """Close the records of the series within [start, end): its fill is committed."""
        inside = await self.db.fetch(_INSIDE, self.provider, symbol, interval.value, start, end)
        await resolve_gaps(self.db, [r["id"] for r in inside])

    async def open_starts(self) -> dict[tuple[str, Interval], datetime]:
        """Where the oldest open record of each series starts."""
        return {
            (r["symbol"], Interval(r["interval"])): r["start"]
            for r in await self.db.fetch(_OPEN, self.provider)
        }
