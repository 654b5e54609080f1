"""The read layer: series names, bars at any interval (stored or derived in the database),
historical and live merged, completeness, ticks.

Derived bars are checked against bars computed in Python from the same rows, across a month
and a year end, so a bucketing mistake in SQL (week origin, month edges) shows up.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from registry_rows import add_provider

from quasar_tui.core.errors import InvalidInputError, NotFoundError
from quasar_tui.core.intervals import Interval
from quasar_tui.core.series import parse_series
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.store.database import Database
from quasar_tui.store.read import ReadBar, Reader, divides, source_interval
from quasar_tui.store.series import resolve

COLUMNS = ["provider", "symbol", "interval", "ts", "open", "high", "low", "close", "volume"]
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # every test bar has ended by then


def random_bars(start: datetime, count: int, step: timedelta, seed: int) -> list[tuple]:
    rng = random.Random(seed)
    rows, price = [], 100.0
    for i in range(count):
        o = price
        c = o + rng.uniform(-1, 1)
        rows.append(
            (
                start + i * step,
                o,
                max(o, c) + rng.random(),
                min(o, c) - rng.random(),
                c,
                round(rng.uniform(0, 5), 4),
            )
        )
        price = c
    return rows


async def store(
    db: Database, table: str, provider: str, symbol: str, interval: str, bars, trades=None
):
    records = [(provider, symbol, interval, *bar) for bar in bars]
    columns = COLUMNS
    if trades is not None:
        records = [(*r, trades) for r in records]
        columns = [*COLUMNS, "trades"]
    async with db.pool.acquire() as conn:
        await conn.copy_records_to_table(table, records=records, columns=columns)


def resample(bars: list[tuple], interval: Interval) -> list[tuple]:
    """Bars computed in Python: the reference the database must match."""
    groups: dict[datetime, list[tuple]] = defaultdict(list)
    for bar in sorted(bars):
        groups[interval.floor(bar[0])].append(bar)
    return [
        (ts, g[0][1], max(b[2] for b in g), min(b[3] for b in g), g[-1][4], sum(b[5] for b in g))
        for ts, g in sorted(groups.items())
    ]


def as_tuples(bars: list[ReadBar]) -> list[tuple]:
    return [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def assert_same(got: list[tuple], want: list[tuple]) -> None:
    assert [g[0] for g in got] == [w[0] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g[1:5] == w[1:5], g[0]
        assert g[5] == pytest.approx(w[5], rel=1e-12), g[0]


async def mapped(db: Database, *triples: tuple[str, str, str]) -> None:
    """Providers, assets and mappings for (common, provider, symbol) triples."""
    providers: dict[str, list[str]] = defaultdict(list)
    for _common, provider, symbol in triples:
        providers[provider].append(symbol)
    for provider, symbols in providers.items():
        await add_provider(db, provider, assets=symbols)
    await MappingStore(db).map_many(list(triples))


def test_series_names_split_at_the_first_colon() -> None:
    assert parse_series("btc/usd").is_common and str(parse_series("btc/usd")) == "BTC/USD"
    name = parse_series("POLYGON:X:BTCUSD")
    assert (name.provider, name.symbol) == ("POLYGON", "X:BTCUSD")
    for bad in ("", ":BTC", "KRAKEN:"):
        with pytest.raises(InvalidInputError):
            parse_series(bad)


def test_which_intervals_tile_which() -> None:
    assert divides(Interval.M1, Interval.MO1) and divides(Interval.H4, Interval.D1)
    assert divides(Interval.D1, Interval.W1) and not divides(Interval.W1, Interval.MO1)
    assert not divides(Interval.H4, Interval.H1) and not divides(Interval.D1, Interval.D1)
    assert source_interval(Interval.H1, {Interval.M5, Interval.M15, Interval.D1}) is Interval.M5
    assert source_interval(Interval.MO1, {Interval.W1}) is None
    assert source_interval(Interval.D1, {Interval.D1, Interval.M1}) is Interval.D1


async def test_a_common_symbol_resolves_in_the_users_provider_order(db: Database) -> None:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"), ("BTC/USD", "POLYGON", "X:BTCUSD"))
    order = await resolve(db, "BTC/USD")
    assert [s.key for s in order] == ["KRAKEN:XBT/USD", "POLYGON:X:BTCUSD"]
    await db.execute("INSERT INTO provider_priority VALUES ('POLYGON', 1), ('KRAKEN', 2)")
    assert [s.provider for s in await resolve(db, "btc/usd")] == ["POLYGON", "KRAKEN"]
    await MappingStore(db).set_priority("BTC/USD", ["KRAKEN", "POLYGON"])
    first = (await resolve(db, "BTC/USD"))[0]
    assert first.label == "BTC/USD (KRAKEN:XBT/USD)"
    only = await resolve(db, "BTC/USD", provider="POLYGON")
    assert [s.symbol for s in only] == ["X:BTCUSD"]
    assert (await resolve(db, "POLYGON:X:BTCUSD"))[0].common == "BTC/USD"

    with pytest.raises(NotFoundError, match="not a mapped common symbol"):
        await resolve(db, "ETH/USD")
    with pytest.raises(NotFoundError, match="no provider named 'kraken'"):
        await resolve(db, "BTC/USD", provider="kraken")


async def test_derived_bars_equal_bars_computed_from_the_same_rows(db: Database) -> None:
    # 1min bars over a month and year end, with a missing hour, a missing day's worth of
    # minutes on a weekend and a live bar that replaces a historical one.
    minutes = random_bars(datetime(2025, 12, 29, tzinfo=UTC), 6 * 1440, timedelta(minutes=1), 1)
    minutes = [
        b
        for b in minutes
        if not datetime(2025, 12, 31, 5) <= b[0].replace(tzinfo=None) < datetime(2025, 12, 31, 6)
    ]
    live = [(minutes[100][0], 1.0, 500.0, 0.5, 2.0, 7.0)]
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    await store(db, "live_data", "KRAKEN", "XBT/USD", "1min", live, trades=3)
    merged = sorted({b[0]: b for b in [*minutes, *live]}.values())
    reader = Reader(db, now=lambda: NOW)

    for interval in (
        Interval.M5,
        Interval.M15,
        Interval.H1,
        Interval.H4,
        Interval.D1,
        Interval.W1,
        Interval.MO1,
    ):
        read = await reader.bars("KRAKEN:XBT/USD", interval)
        assert read.derived and read.source_interval is Interval.M1
        assert_same(as_tuples(read.bars), resample(merged, interval))
    months = await reader.bars("KRAKEN:XBT/USD", "1M")
    assert [b.ts for b in months.bars] == [
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    ]

    historical_only = await reader.bars("KRAKEN:XBT/USD", "1h", source="historical")
    assert_same(as_tuples(historical_only.bars), resample(minutes, Interval.H1))
    assert (await reader.bars("KRAKEN:XBT/USD", "1min", source="live")).bars[0].trades == 3


async def test_monthly_bars_from_daily_across_a_year_end(db: Database) -> None:
    days = random_bars(datetime(2025, 10, 1, tzinfo=UTC), 200, timedelta(days=1), 2)
    await store(db, "historical_data", "EODHD", "AAPL.US", "1d", days)
    reader = Reader(db, now=lambda: NOW)
    for interval in (Interval.W1, Interval.MO1):
        read = await reader.bars("EODHD:AAPL.US", interval)
        assert read.source_interval is Interval.D1
        assert_same(as_tuples(read.bars), resample(days, interval))
    stored = await reader.bars(
        "EODHD:AAPL.US",
        "1d",
        start=datetime(2026, 2, 27, tzinfo=UTC),
        end=datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert [b.ts.day for b in stored.bars] == [27, 28, 1] and not stored.derived


async def test_incomplete_buckets_are_flagged(db: Database) -> None:
    start = datetime(2026, 3, 7, tzinfo=UTC)  # a Saturday: this market trades every day
    minutes = random_bars(start, 3 * 60, timedelta(minutes=1), 3)
    del minutes[70]  # 01:10 is missing: the 01:00 hour is short of a bar
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    await db.execute(
        "INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason) "
        "VALUES ('KRAKEN', 'XBT/USD', '1min', $1, $2, 'test')",
        start + timedelta(minutes=125),
        start + timedelta(minutes=126),
    )
    now = start + timedelta(hours=2, minutes=30)  # the 02:00 hour is still forming
    read = await Reader(db, now=lambda: now).bars("KRAKEN:XBT/USD", "1h")
    assert [(b.ts.hour, b.complete) for b in read.bars] == [(0, True), (1, False), (2, False)]
    later = await Reader(db, now=lambda: NOW).bars("KRAKEN:XBT/USD", "1h")
    assert [b.complete for b in later.bars] == [True, False, False]  # the open gap stays


async def test_limit_range_and_what_cannot_be_read(db: Database) -> None:
    await mapped(db, ("ACME", "EODHD", "ACME.US"))
    days = random_bars(datetime(2026, 1, 5, tzinfo=UTC), 30, timedelta(days=1), 4)
    await store(db, "historical_data", "EODHD", "ACME.US", "1d", days)
    reader = Reader(db, now=lambda: NOW)
    newest = await reader.bars("ACME", "1d", limit=3)
    assert [b.ts for b in newest.bars] == [d[0] for d in days[-3:]]
    assert newest.series.label == "ACME (EODHD:ACME.US)"
    # A range edge inside a week takes the whole week.
    week = await reader.bars(
        "ACME", "1w", start=datetime(2026, 1, 14, tzinfo=UTC), end=datetime(2026, 1, 15, tzinfo=UTC)
    )
    assert [b.ts for b in week.bars] == [datetime(2026, 1, 12, tzinfo=UTC)]
    assert week.bars[0].open == days[7][1]

    with pytest.raises(
        NotFoundError, match=r"no 1h bars can be read for ACME: EODHD:ACME.US has 1d"
    ):
        await reader.bars("ACME", "1h")
    with pytest.raises(NotFoundError, match="nothing is stored"):
        await reader.bars("EODHD:OTHER", "1d")
    with pytest.raises(InvalidInputError, match="unknown interval"):
        await reader.bars("ACME", "2h")
    with pytest.raises(InvalidInputError, match="out of range"):
        await reader.bars("ACME", "1d", limit=0)


async def test_ticks_of_a_series_in_a_range(db: Database) -> None:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"))
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    async with db.pool.acquire() as conn:
        await conn.copy_records_to_table(
            "live_ticks",
            records=[
                ("KRAKEN", "XBT/USD", t0 + timedelta(seconds=i), i, 100.0 + i, 0.5, "buy")
                for i in range(10)
            ],
            columns=["provider", "symbol", "ts", "seq", "price", "size", "side"],
        )
    read = await Reader(db).ticks(
        "BTC/USD", start=t0 + timedelta(seconds=2), end=t0 + timedelta(seconds=6)
    )
    assert [t.seq for t in read.ticks] == [2, 3, 4, 5]
    assert read.series.key == "KRAKEN:XBT/USD"
