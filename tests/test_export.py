"""`quasar export SERIES` as a user runs it: through the read layer (any interval, historical
and live merged, `complete`), in CSV, JSON lines and Parquet, streamed in batches, with the
same bars the Python API reads."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from registry_rows import add_provider
from test_read import mapped, random_bars, store

from quasar_tui.cli.bar_files import COLUMNS
from quasar_tui.core.numbers import denoised
from quasar_tui.engine.events import EventBus
from quasar_tui.engine.gap_filler import rest_backfill
from quasar_tui.engine.writer import Writer
from quasar_tui.sdk.models import Bar
from quasar_tui.store.database import Database
from quasar_tui.store.read import ReadBar, Reader

START = datetime(2025, 12, 31, 22, tzinfo=UTC)  # three hours across a year end
NOISY = 48.03550999999999  # a live volume summed from trades
PRICES = ("open", "high", "low", "close", "volume")


@pytest.fixture
async def btc(db: Database) -> list[tuple]:
    """BTC/USD mapped to KRAKEN:XBT/USD: 1min historical bars, one replaced by a live bar
    with a noisy volume and no trade count, and an open gap in the last hour."""
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"))
    minutes = random_bars(START, 180, timedelta(minutes=1), 7)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    await store(
        db, "live_data", "KRAKEN", "XBT/USD", "1min", [(START, 1.0, 500.0, 0.5, 2.0, NOISY)]
    )
    await db.execute(
        "INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason) "
        "VALUES ('KRAKEN', 'XBT/USD', '1min', $1, $2, 'test')",
        START + timedelta(hours=2, minutes=5),
        START + timedelta(hours=2, minutes=6),
    )
    return minutes


def expected_rows(bars: list[ReadBar]) -> list[list[str]]:
    return [
        [
            b.ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            *(repr(denoised(getattr(b, k))) for k in PRICES),
            "" if b.trades is None else str(b.trades),
            "true" if b.complete else "false",
        ]
        for b in bars
    ]


async def test_a_common_symbol_exports_the_bars_the_python_api_reads(
    btc: list[tuple], db: Database, run_quasar
) -> None:
    result = run_quasar("export", "BTC/USD", "--interval", "1h")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == COLUMNS == ("ts", *PRICES, "trades", "complete")
    read = await Reader(db).bars("BTC/USD", "1h")
    assert read.derived and len(read.bars) == 3
    assert rows[1:] == expected_rows(read.bars)
    # The live bar won its minute; the hour with the open gap is not complete.
    assert rows[1][1] == "1.0" and rows[1][2] == "500.0"
    assert [r[7] for r in rows[1:]] == ["true", "true", "false"]

    minute = run_quasar("export", "BTC/USD", "-i", "1min", "--to", "2025-12-31T22:01")
    assert minute.stdout.splitlines()[1] == "2025-12-31T22:00:00Z,1.0,500.0,0.5,2.0,48.03551,,true"


async def test_sources_formats_and_the_older_form(
    btc: list[tuple], db: Database, run_quasar, tmp_path: Path
) -> None:
    historical = run_quasar("export", "BTC/USD", "-i", "1h", "--source", "historical")
    assert historical.stdout.splitlines()[1].split(",")[1] == repr(denoised(btc[0][1]))
    live = run_quasar("export", "BTC/USD", "-i", "1min", "--source", "live", "--format", "jsonl")
    assert [json.loads(line) for line in live.stdout.splitlines()] == [
        {
            "ts": "2025-12-31T22:00:00Z",
            "open": 1.0,
            "high": 500.0,
            "low": 0.5,
            "close": 2.0,
            "volume": 48.03551,
            "trades": None,
            "complete": True,
        }
    ]
    # The older form: NAME SYMBOL, historical by default, the columns it always wrote; an
    # interval that was not collected is now derived.
    older = run_quasar("export", "KRAKEN", "XBT/USD", "-i", "1h")
    assert older.returncode == 0, older.stderr
    assert older.stdout.splitlines()[0] == "ts,open,high,low,close,volume"
    assert [line.rsplit(",", 2)[0] for line in historical.stdout.splitlines()[1:]] == (
        older.stdout.splitlines()[1:]
    )
    older_live = run_quasar("export", "KRAKEN", "XBT/USD", "-i", "1min", "--live")
    assert older_live.stdout.splitlines() == [
        "ts,open,high,low,close,volume,trades",
        "2025-12-31T22:00:00Z,1.0,500.0,0.5,2.0,48.03551,",
    ]

    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "btc.parquet"
    result = run_quasar("export", "BTC/USD", "-i", "1h", "--format", "parquet", "-o", str(out))
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert tuple(table.column_names) == COLUMNS
    assert table.column("complete").to_pylist() == [True, True, False]
    assert table.column("ts").to_pylist()[0] == START

    for args, says, status in [
        (("BTC/USD", "-i", "1h", "--live", "--source", "both"), "disagree", 2),
        (("KRAKEN:ETH/USD", "-i", "1d", "--live"), "no live 1d bars can be read", 1),
        (("ETH/USD", "-i", "1h"), "not a mapped common symbol", 1),
        (("BTC/USD", "-i", "1h", "--from", "2027-01-01"), "no 1h bars of KRAKEN:XBT/USD", 1),
    ]:
        bad = run_quasar("export", *args, "-o", str(tmp_path / "never.csv"))
        assert bad.returncode == status, (args, bad.stderr)
        assert says in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    assert not (tmp_path / "never.csv").exists()


async def test_a_large_export_streams_every_bar_in_order(db: Database, run_quasar) -> None:
    minutes = random_bars(START, 25_000, timedelta(minutes=1), 8)  # more than two batches
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    result = run_quasar("export", "KRAKEN:XBT/USD", "-i", "1min")
    lines = result.stdout.splitlines()
    assert len(lines) == 25_001 and lines[1].startswith("2025-12-31T22:00:00Z,")
    assert lines[-1].startswith((minutes[-1][0]).strftime("%Y-%m-%dT%H:%M:%SZ"))

    reader = Reader(db)
    async with reader.stream("KRAKEN:XBT/USD", "1h", batch=100) as stream:
        batches = [batch async for batch in stream.batches]
    assert stream.derived and [len(b) for b in batches][:4] == [100, 100, 100, 100]
    whole = await reader.bars("KRAKEN:XBT/USD", "1h")
    assert [bar for batch in batches for bar in batch] == whole.bars


class _CandlesWithoutCounts:
    """A provider whose REST candles carry no trade count (as many do)."""

    async def get_history(self, symbol, start, end, interval):
        for i in range(3):
            yield Bar(
                ts=start + timedelta(minutes=i),
                open=1,
                high=2,
                low=0.5,
                close=1.5,
                volume=3,
                symbol=symbol,
                trades=None if i else 4,
            )


async def test_refilled_bars_without_a_trade_count_store_none(db: Database) -> None:
    await add_provider(db, "P", assets=["X"])
    writer = Writer(db, EventBus(), flush_seconds=0.05)
    await writer.start()
    try:
        written = await rest_backfill(
            _CandlesWithoutCounts(), writer, "P", "X", "1min", START, START + timedelta(hours=1)
        )
    finally:
        await writer.stop()
    assert written == 3
    trades = await db.fetch("SELECT trades FROM live_data WHERE provider = 'P' ORDER BY ts")
    assert [r["trades"] for r in trades] == [4, None, None]
