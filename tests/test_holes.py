"""The gap report: holes made by deleting stored bars are reported exactly, judged by each
market's calendar (US holidays and early closes, FX weekends, crypto never closed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from registry_rows import add_provider
from test_read import random_bars, store

from quasar_tui.quality.holes import find_holes
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def series(db: Database, provider: str, info: SymbolInfo, interval: str, bars) -> None:
    await add_provider(db, provider, assets=[info])
    await SubscriptionStore(db).add(provider, [info.symbol], interval, "historical")
    await store(db, "historical_data", provider, info.symbol, interval, bars)


async def test_crypto_holes_are_exact(db: Database) -> None:
    hours = random_bars(utc(2026, 11, 27), 96, timedelta(hours=1), 1)  # Friday to Monday
    kept = [b for i, b in enumerate(hours) if i not in {5, 30, 31, 32, 60}]
    await series(
        db, "KRAKEN", SymbolInfo("XBT/USD", exchange="KRAKEN", asset_class="crypto"), "1h", kept
    )
    holes = await find_holes(db, "KRAKEN:XBT/USD")
    assert [(h.first_missing, h.last_missing, h.missing, h.state) for h in holes] == [
        (hours[5][0], hours[5][0], 1, "open"),
        (hours[30][0], hours[32][0], 3, "open"),  # a Saturday: crypto trades
        (hours[60][0], hours[60][0], 1, "open"),
    ]
    assert holes[0].calendar == "24/7" and holes[0].series == "KRAKEN:XBT/USD"


async def test_us_holiday_and_weekend_are_not_holes(db: Database) -> None:
    days = [utc(2026, 11, d) for d in (19, 20, 23, 24, 25, 27, 30)]  # no 26th: Thanksgiving
    bars = [(d, 1.0, 2.0, 0.5, 1.5, 10.0) for d in days]
    del bars[3]  # the 24th is a session and is missing
    await series(
        db, "EODHD", SymbolInfo("AAPL.US", exchange="US", asset_class="Common Stock"), "1d", bars
    )
    holes = await find_holes(db, "EODHD:AAPL.US", "1d")
    assert [(h.first_missing, h.missing, h.calendar) for h in holes] == [
        (utc(2026, 11, 24), 1, "XNYS")
    ]


async def test_fx_weekend_is_not_a_hole(db: Database) -> None:
    start = utc(2026, 12, 4, 18)  # Friday 18:00 to Monday 02:00
    hours = [b for b in random_bars(start, 57, timedelta(hours=1), 2)]
    open_hours = [b for b in hours if not (utc(2026, 12, 4, 22) <= b[0] < utc(2026, 12, 6, 22))]
    del open_hours[1]  # Friday 19:00
    await series(
        db,
        "EODHD",
        SymbolInfo("EURUSD.FOREX", exchange="FOREX", asset_class="Currency"),
        "1h",
        open_hours,
    )
    holes = await find_holes(db, "EODHD:EURUSD.FOREX")
    assert [(h.first_missing, h.missing) for h in holes] == [(utc(2026, 12, 4, 19), 1)]


async def test_states_from_what_the_engine_recorded(db: Database, run_quasar) -> None:
    hours = random_bars(utc(2026, 11, 2), 48, timedelta(hours=1), 3)
    kept = [b for i, b in enumerate(hours) if i not in {4, 10, 20}]
    await series(
        db, "KRAKEN", SymbolInfo("XBT/USD", exchange="KRAKEN", asset_class="crypto"), "1h", kept
    )
    insert = (
        "INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason, attempts, "
        "last_error, resolved_at, resolution) VALUES ('KRAKEN', 'XBT/USD', '1h', $1, $2, 'test', "
        "$3, $4, $5, $6)"
    )
    await db.execute(
        insert, hours[10][0], hours[11][0], 3, "HTTP 500 from the provider", None, None
    )
    await db.execute(insert, hours[20][0], hours[21][0], 1, None, utc(2026, 11, 3), "empty")
    await db.execute(insert, hours[40][0], hours[41][0], 1, None, utc(2026, 11, 3), "filled")

    listed = run_quasar("gaps", "KRAKEN:XBT/USD", "--all", "--json")
    assert listed.returncode == 0, listed.stderr
    states = [(h["first_missing"], h["state"], h["detail"]) for h in json.loads(listed.stdout)]
    assert states == [
        (hours[4][0].isoformat(), "open", None),
        (hours[10][0].isoformat(), "failed", "HTTP 500 from the provider"),
        (hours[20][0].isoformat(), "unfillable", "the provider had no data for it"),
        (hours[40][0].isoformat(), "filled", None),
    ]
    table = run_quasar("gaps")
    assert table.returncode == 0 and table.stdout.count("KRAKEN:XBT/USD") == 3
    assert "filled" not in table.stdout
