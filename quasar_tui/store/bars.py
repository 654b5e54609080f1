"""Reading stored bars back (charts, exports): the newest `limit` bars of one series in a range."""

from __future__ import annotations

from datetime import UTC, datetime

from quasar_tui.core.errors import InvalidInputError
from quasar_tui.sdk.models import Bar
from quasar_tui.store.database import Database

# Table names cannot be bound, so each readable table has its own fixed statement.
_NEWEST = """
    SELECT ts, open, high, low, close, volume FROM {table}
     WHERE provider = $1 AND symbol = $2 AND interval = $3 AND ts >= $4 AND ts < $5
     ORDER BY ts DESC
     LIMIT $6
"""
_QUERIES = {table: _NEWEST.format(table=table) for table in ("historical_data", "live_data")}

BAR_TABLES = tuple(_QUERIES)
FAR_PAST = datetime(1, 1, 2, tzinfo=UTC)  # open ends of a time range, valid timestamptz
FAR_FUTURE = datetime(9999, 12, 30, tzinfo=UTC)


async def fetch_bars(
    db: Database,
    table: str,
    provider: str,
    symbol: str,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
) -> list[Bar]:
    """Bars with `start <= ts < end`, oldest first; the newest `limit` when there are more."""
    query = _QUERIES.get(table)
    if query is None:
        raise InvalidInputError(f"unknown bar table {table!r}: use one of {', '.join(BAR_TABLES)}")
    rows = await db.fetch(
        query, provider, symbol, interval, start or FAR_PAST, end or FAR_FUTURE, limit
    )
    return [
        Bar(
            ts=r["ts"],
            open=r["open"],
            high=r["high"],
            low=r["low"],
            close=r["close"],
            volume=r["volume"],
            symbol=symbol,
        )
        for r in reversed(rows)
    ]
