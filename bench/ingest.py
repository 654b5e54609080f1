"""Historical bars through the engine's writer against raw COPY and executemany.

All four paths write the same number of rows into `historical_data` in one run, so the
ratios are comparable even on a noisy machine. Each write uses a provider name that sorts after
every stored row, so every path appends at the same place in the primary-key index: a B-tree
takes rows at its right edge much faster than in its middle, and a path that always got the
right edge would look faster than it is.
- raw: `copy_records_to_table`, the ceiling;
- fast: Writer.put_bars with every batch beyond the last stored bar (binary COPY path);
- overlap: Writer.put_bars re-writing the bars the fast path just stored, as a re-fetched
  window does (staging + ON CONFLICT DO UPDATE path);
- executemany: INSERT ... ON CONFLICT DO NOTHING, the usual way.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

from bench.common import report, scratch_database
from quasar_tui.engine.events import EventBus
from quasar_tui.engine.writer import Writer
from quasar_tui.store.database import Database
from quasar_tui.store.tables import BarRow

START = datetime(2020, 1, 1, tzinfo=UTC)
INSERT = """INSERT INTO historical_data
    (provider, symbol, interval, ts, open, high, low, close, volume)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"""


def make_rows(provider: str, symbols: int, per_symbol: int) -> list[BarRow]:
    """Minute bars for `symbols` series, oldest first within each series."""
    rows = []
    for s in range(symbols):
        symbol = f"SYM{s:04d}"
        for i in range(per_symbol):
            price = 100.0 + (i % 50) * 0.1 + s
            rows.append(
                BarRow(
                    provider,
                    symbol,
                    "1min",
                    START + timedelta(minutes=i),
                    price,
                    price + 0.5,
                    price - 0.5,
                    price + 0.1,
                    10.0 + i % 7,
                )
            )
    return rows


async def timed(coro: Awaitable[None]) -> float:
    began = time.perf_counter()
    await coro
    return time.perf_counter() - began


async def raw_copy(db: Database, rows: list[BarRow]) -> None:
    async with db.pool.acquire() as conn:
        await conn.copy_records_to_table(
            "historical_data",
            records=rows,
            columns=[
                "provider",
                "symbol",
                "interval",
                "ts",
                "open",
                "high",
                "low",
                "close",
                "volume",
            ],
        )


async def executemany(db: Database, rows: list[BarRow]) -> None:
    async with db.pool.acquire() as conn:
        await conn.executemany(INSERT, rows)


async def through_writer(writer: Writer, rows: list[BarRow], batch: int) -> None:
    """Chunks of `batch` rows, as a historical job hands them over, then wait for the commit."""
    for i in range(0, len(rows), batch):
        await writer.put_bars("historical_data", rows[i : i + batch])
    await writer.flush()


async def main(symbols: int, per_symbol: int, batch: int, rounds: int) -> None:
    async with scratch_database() as db:
        # Running before the clock starts, as it is in an engine.
        writer = Writer(db, EventBus())
        await writer.start()
        n = symbols * per_symbol
        best: dict[str, float] = {}
        for r in range(rounds):
            # Provider names in write order, so each write lands at the index's right edge.
            raw, fast, many = (f"P{r:03d}{i}" for i in range(3))
            cases = {
                "raw_copy": raw_copy(db, make_rows(raw, symbols, per_symbol)),
                "writer_fast": through_writer(writer, make_rows(fast, symbols, per_symbol), batch),
                "writer_overlap": through_writer(
                    writer, make_rows(fast, symbols, per_symbol), batch
                ),
                "executemany": executemany(db, make_rows(many, symbols, per_symbol)),
            }
            for name, coro in cases.items():
                rate = n / await timed(coro)
                best[name] = max(best.get(name, 0.0), rate)
            stored = await db.fetchval(
                "SELECT count(*) FROM historical_data WHERE provider = $1", fast
            )
            if stored != n:
                raise SystemExit(f"writer stored {stored} rows, expected {n}")
        await writer.stop()
    raw_rate = best["raw_copy"]
    report(
        {
            "bench": "ingest",
            "rows": n,
            "rounds": rounds,
            "rows_per_s": {k: round(v) for k, v in best.items()},
            "fast_vs_raw_copy": round(best["writer_fast"] / raw_rate, 3),
            "fast_vs_executemany": round(best["writer_fast"] / best["executemany"], 2),
            "overlap_vs_raw_copy": round(best["writer_overlap"] / raw_rate, 3),
            "overlap_vs_executemany": round(best["writer_overlap"] / best["executemany"], 2),
            "targets": {
                "fast_vs_raw_copy": 0.7,
                "fast_vs_executemany": 2.0,
                "overlap_vs_raw_copy": 0.4,
                "overlap_vs_executemany": 1.0,
            },
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--per-symbol", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    a = parser.parse_args()
    asyncio.run(main(a.symbols, a.per_symbol, a.batch, a.rounds))
