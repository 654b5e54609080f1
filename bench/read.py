"""Reading bars at an interval that was not collected: derived in the database by the read
layer, against fetching the raw rows and resampling them in Python, in the same run.

One year of 1min bars of one series (525,600 rows), beside a second series so the reads must
use the index. Each figure is the median of `--runs` reads:
- `first_read_ms`: the first read, which builds the 1h and 1d rollups (once);
- `derived_ms`: later reads, from the rollups;
- `after_new_bar_ms`: a read after a live bar was written, which brings one bucket of each
  rollup up to date first (what a chart does while collection runs);
- `on_the_fly_ms`: the same bars derived from the 525,600 source rows at every read (a
  historical-only read, which rollups do not serve);
- `python_ms`: every raw row over the wire, grouped in Python.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import report, scratch_database
from quasar_tui.core.intervals import Interval
from quasar_tui.store.database import Database
from quasar_tui.store.read import BarsRead, Reader, Source

START = datetime(2025, 1, 1, tzinfo=UTC)
MINUTES = 525_600
LIVE = ["provider", "symbol", "interval", "ts", "open", "high", "low", "close", "volume", "trades"]
COLUMNS = ["provider", "symbol", "interval", "ts", "open", "high", "low", "close", "volume"]
RAW = """SELECT ts, open, high, low, close, volume FROM historical_data
          WHERE provider = $1 AND symbol = $2 AND interval = '1min' ORDER BY ts"""


async def fill(db: Database, minutes: int) -> None:
    for symbol in ("XBT/USD", "ETH/USD"):
        rows = [
            (
                "KRAKEN",
                symbol,
                "1min",
                START + timedelta(minutes=i),
                100.0 + i % 97,
                101.0 + i % 89,
                99.0 - i % 83,
                100.0 + i % 79,
                1.0 + i % 7,
            )
            for i in range(minutes)
        ]
        async with db.pool.acquire() as conn:
            await conn.copy_records_to_table("historical_data", records=rows, columns=COLUMNS)
    await db.execute("ANALYZE historical_data")


async def in_python(db: Database, interval: Interval) -> int:
    """The usual way without a read layer: every raw row over the wire, grouped in Python."""
    rows = await db.fetch(RAW, "KRAKEN", "XBT/USD")
    buckets: dict[datetime, list[float]] = {}
    for ts, o, h, low, c, v in rows:
        key = interval.floor(ts)
        bar = buckets.get(key)
        if bar is None:
            buckets[key] = [o, h, low, c, v]
        else:
            bar[1] = max(bar[1], h)
            bar[2] = min(bar[2], low)
            bar[3] = c
            bar[4] += v
    return len(buckets)


async def write_live_bar(db: Database, minute: int) -> None:
    """One live 1min bar after the stored year, as the engine writes one a minute."""
    row = (
        "KRAKEN",
        "XBT/USD",
        "1min",
        START + timedelta(minutes=minute),
        1.0,
        2.0,
        0.5,
        1.5,
        3.0,
        4,
    )
    async with db.pool.acquire() as conn:
        await conn.copy_records_to_table("live_data", records=[row], columns=LIVE)


async def median_ms(runs: int, read: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await read()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1)


async def main(runs: int, minutes: int) -> None:
    async with scratch_database() as db:
        await fill(db, minutes)
        reader = Reader(db)
        figures: dict[str, Any] = {"rows": minutes, "runs": runs}
        minute = minutes
        for interval in (Interval.H1, Interval.D1):

            def read(i: Interval = interval, source: Source = "both") -> Awaitable[BarsRead]:
                return reader.bars("KRAKEN:XBT/USD", i, source=source, limit=1_000_000)

            def historical(i: Interval = interval) -> Awaitable[BarsRead]:
                return read(i, "historical")

            def resampled(i: Interval = interval) -> Awaitable[int]:
                return in_python(db, i)

            first = await median_ms(1, read)
            bars = (await historical()).bars
            assert len(bars) == await in_python(db, interval)
            assert [b for b in (await read()).bars if b.ts < START + timedelta(days=365)] == bars
            derived = await median_ms(runs, read)

            async def after_new_bar(i: Interval = interval) -> None:
                nonlocal minute
                await write_live_bar(db, minute)
                minute += 1
                await read(i)

            after = await median_ms(runs, after_new_bar)
            on_the_fly = await median_ms(runs, historical)
            python = await median_ms(runs, resampled)
            figures[interval.value] = {
                "bars": len(bars),
                "first_read_ms": first,
                "derived_ms": derived,
                "after_new_bar_ms": after,
                "on_the_fly_ms": on_the_fly,
                "python_ms": python,
                "rollup_speedup": round(on_the_fly / derived, 1),
                "speedup": round(python / derived, 1),
            }
            print(
                f"{interval.value}: {len(bars)} bars; first read (builds the rollups) {first} ms, "
                f"from rollups {derived} ms, after a new live bar {after} ms, derived from "
                f"the source rows {on_the_fly} ms, raw rows resampled in Python {python} ms"
            )
        report(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="reads per figure (default 5)")
    parser.add_argument("--minutes", type=int, default=MINUTES, help="1min bars per series")
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.minutes))
