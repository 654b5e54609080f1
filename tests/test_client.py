"""The Python API as a notebook uses it: `quasar_tui.open()` then frames by series name."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pandas
import polars
import pyarrow
import pytest
from test_read import mapped, random_bars, resample, store

import quasar_tui
from quasar_tui.core.errors import InvalidInputError, NotFoundError
from quasar_tui.core.intervals import Interval
from quasar_tui.store.database import Database

START = datetime(2026, 10, 30, tzinfo=UTC)  # across a month end


@pytest.fixture
async def collected(db: Database) -> list[tuple]:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"))
    minutes = random_bars(START, 4 * 1440, timedelta(minutes=1), 7)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    await store(db, "live_data", "KRAKEN", "XBT/USD", "1min", minutes[-2:], trades=9)
    async with db.pool.acquire() as conn:
        await conn.copy_records_to_table(
            "live_ticks",
            records=[
                ("KRAKEN", "XBT/USD", START + timedelta(seconds=i), i, 1.0 + i, 2.0, "sell")
                for i in range(5)
            ],
            columns=["provider", "symbol", "ts", "seq", "price", "size", "side"],
        )
    return minutes


async def test_bars_as_a_pandas_frame_in_a_notebook(collected: list[tuple], test_dsn: str) -> None:
    # A notebook's loop is already running: the blocking API must still work inside it.
    def session() -> tuple:
        with quasar_tui.open(dsn=test_dsn) as q:
            return (
                q.bars("BTC/USD", "1h", start="2026-10-31", end="2026-11-02"),
                q.bars("KRAKEN:XBT/USD", "1d", as_="arrow"),
                q.bars("BTC/USD", "1M", as_="polars"),
                q.ticks(
                    "BTC/USD", start=START + timedelta(seconds=1), end=START + timedelta(seconds=3)
                ),
                q.symbols(),
                q.mappings(),
            )

    hours, days, months, ticks, symbols, mappings = await asyncio.to_thread(session)
    assert isinstance(hours, pandas.DataFrame) and hours.index.name == "ts"
    assert str(hours.index.tz) == "UTC" and len(hours) == 48
    assert list(hours.columns) == [
        "open",
        "high",
        "low",
        "close",
        "volume",
        "trades",
        "complete",
        "provider",
    ]
    want = [
        b
        for b in resample(collected, Interval.H1)
        if datetime(2026, 10, 31, tzinfo=UTC) <= b[0] < datetime(2026, 11, 2, tzinfo=UTC)
    ]
    assert hours.index[0].to_pydatetime() == want[0][0]
    assert list(hours["open"]) == [b[1] for b in want] and list(hours["close"]) == [
        b[4] for b in want
    ]
    assert hours["complete"].all() and set(hours["provider"]) == {"KRAKEN"}

    assert isinstance(days, pyarrow.Table) and days.num_rows == 4
    assert isinstance(months, polars.DataFrame)
    assert months["ts"].to_list() == [
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
    ]
    assert months["complete"].to_list() == [True, False]  # November is still forming
    assert list(ticks["seq"]) == [1, 2]
    assert list(symbols["common"]) == ["BTC/USD"] and list(mappings["symbol"]) == ["XBT/USD"]


async def test_the_async_twin_and_clear_errors(collected: list[tuple], test_dsn: str) -> None:
    async with await quasar_tui.open_async(dsn=test_dsn) as q:
        records = await q.bars("BTC/USD", "4h", as_="records")
        # The last bucket mixes live bars (9 trades each) with historical ones (no count).
        assert records[0].ts == START and records[-1].trades is None
        live = await q.bars("BTC/USD", "4h", source="live", as_="records")
        assert [b.trades for b in live] == [18]
        assert (await q.gaps("BTC/USD")).empty
        with pytest.raises(NotFoundError, match="no series named 'ETH/USD'"):
            await q.bars("ETH/USD", "1h")
        with pytest.raises(InvalidInputError, match="not a date"):
            await q.bars("BTC/USD", "1h", start="yesterday")


def test_a_missing_extra_is_one_clear_line(tmp_path, test_dsn: str) -> None:
    # pandas hidden from this interpreter: the call says what to install.
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import quasar_tui\n"
        f"q = quasar_tui.open(dsn={test_dsn!r})\n"
        "try:\n    q.symbols()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
        "finally:\n    q.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == (
        "MissingExtraError pandas is not installed: pip install 'quasar-tui[pandas]' "
        "(or ask for as_='records')"
    ), result.stderr
