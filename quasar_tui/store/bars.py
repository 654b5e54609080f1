"""Reading stored bars back: the newest `limit` bars of one series in a range (charts), or all
of them oldest first in batches (exports)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import asyncpg

from quasar_tui.core.errors import InvalidInputError
from quasar_tui.sdk.models import Bar
from quasar_tui.store.database import Database

#: What each bar table stores per bar, in the order exports write it.
COLUMNS = {
    "historical_data": ("ts", "open", "high", "low", "close", "volume"),
    "live_data": ("ts", "open", "high", "low", "close", "volume", "trades"),
}
BAR_TABLES = tuple(COLUMNS)

# Table names cannot be bound, so each readable table has its own fixed statements.
_RANGE = """
    SELECT {columns} FROM {table}
     WHERE provider = $1 AND symbol = $2 AND interval = $3 AND ts >= $4 AND ts < $5"""
_NEWEST = {
    table: _RANGE.format(columns=", ".join(COLUMNS["historical_data"]), table=table)
    + " ORDER BY ts DESC LIMIT $6"
    for table in BAR_TABLES
}
_OLDEST_FIRST = {
    table: _RANGE.format(columns=", ".join(columns), table=table) + " ORDER BY ts"
    for table, columns in COLUMNS.items()
}
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
    query = _NEWEST.get(table)
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


async def stream_bars(
    db: Database,
    table: str,
    provider: str,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    batch: int = 10_000,
) -> AsyncGenerator[list[asyncpg.Record], None]:
    """Every bar with `start <= ts < end`, oldest first, `batch` records at a time, each
    record holding `COLUMNS[table]`; one transaction, so the export is one consistent read."""
    query = _OLDEST_FIRST[table]
    async with db.pool.acquire() as conn, conn.transaction():
        cursor = await conn.cursor(query, provider, symbol, interval, start, end)
        while records := await cursor.fetch(batch):
            yield records
