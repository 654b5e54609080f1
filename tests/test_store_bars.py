"""Reading stored bars back: newest `limit` bars of one series in a range, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quasar_tui.core.errors import InvalidInputError
from quasar_tui.store.bars import fetch_bars
from quasar_tui.store.database import Database

T0 = datetime(2024, 3, 1, tzinfo=UTC)
INSERT = """
INSERT INTO historical_data (provider, symbol, interval, ts, open, high, low, close, volume)
VALUES ($1, $2, $3, $4, $5::float8, $5::float8 + 1, $5::float8 - 1, $5::float8 + 0.5, 10)
"""


async def test_fetch_bars_range_limit_and_order(db: Database) -> None:
    rows = [("P", "AAA", "1d", T0 + timedelta(days=i), 100.0 + i) for i in range(10)]
    rows.append(("P", "AAA", "1h", T0, 1.0))
    rows.append(("P", "BBB", "1d", T0, 2.0))
    async with db.pool.acquire() as conn:
        await conn.executemany(INSERT, rows)

    bars = await fetch_bars(db, "historical_data", "P", "AAA", "1d", limit=3)
    assert [b.open for b in bars] == [107.0, 108.0, 109.0]
    assert bars[0].ts < bars[-1].ts and bars[0].symbol == "AAA"

    window = await fetch_bars(
        db,
        "historical_data",
        "P",
        "AAA",
        "1d",
        start=T0 + timedelta(days=2),
        end=T0 + timedelta(days=5),
    )
    assert [b.ts.day for b in window] == [3, 4, 5]
    assert await fetch_bars(db, "live_data", "P", "AAA", "1d") == []


async def test_fetch_bars_refuses_unknown_tables(db: Database) -> None:
    with pytest.raises(InvalidInputError, match="unknown bar table 'assets'"):
        await fetch_bars(db, "assets", "P", "AAA", "1d")
