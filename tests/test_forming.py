"""The forming bar: stored live bars brought up to the last stored tick, so a chart's newest
candle moves with the market between the minutes the engine writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from test_read import mapped, store

from quasar_tui.store.database import Database
from quasar_tui.store.read import Reader

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
TICKS = """
INSERT INTO live_ticks (provider, symbol, ts, seq, price, size) VALUES ($1, $2, $3, $4, $5, $6)
"""


async def test_ticks_after_the_stored_bars_complete_the_forming_bar(db: Database) -> None:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"))
    minutes = [(T0 + timedelta(minutes=i), 10.0, 12.0, 9.0, 11.0, 1.5) for i in range(3)]
    await store(db, "live_data", "KRAKEN", "XBT/USD", "1min", minutes, trades=2)
    # One tick inside a stored minute (already in its bar), two in the minute now forming.
    for seq, (second, price, size) in enumerate(
        ((90, 99.0, 5.0), (185, 13.0, 0.5), (220, 8.0, 0.25))
    ):
        await db.execute(
            TICKS, "KRAKEN", "XBT/USD", T0 + timedelta(seconds=second), seq, price, size
        )
    reader = Reader(db, now=lambda: T0 + timedelta(minutes=3, seconds=50))

    five = await reader.bars("BTC/USD", "5min")
    live = await reader.with_forming(five)
    assert len(five.bars) == len(live.bars) == 1
    bar = live.bars[0]
    assert (bar.open, bar.high, bar.low, bar.close) == (10.0, 13.0, 8.0, 8.0)
    assert bar.volume == 4.5 + 0.75 and bar.trades == 6 + 2 and not bar.complete

    one = await reader.with_forming(await reader.bars("BTC/USD", "1min"))
    assert [b.ts.minute for b in one.bars] == [0, 1, 2, 3]
    forming = one.bars[-1]
    assert (forming.open, forming.high, forming.low, forming.close) == (13.0, 13.0, 8.0, 8.0)
    assert forming.trades == 2 and not forming.complete

    # In the next bucket, with no tick since it began: nothing to add.
    quiet = Reader(db, now=lambda: T0 + timedelta(minutes=9))
    before = await quiet.bars("BTC/USD", "5min")
    assert await quiet.with_forming(before) == before
