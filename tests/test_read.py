"""The read layer: series names, bars at any interval (stored or derived in the database),
historical and live merged, completeness, ticks.

Derived bars are checked against bars computed in Python from the same rows, across a month
and a year end, so a bucketing mistake in SQL (week origin, month edges) shows up.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from registry_rows import add_provider

from quasar_tui.core.errors import InvalidInputError, NotFoundError
from quasar_tui.core.intervals import Interval
from quasar_tui.core.series import parse_series
from quasar_tui.engine.events import EventBus
from quasar_tui.engine.writer import Writer
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.store.database import Database
from quasar_tui.store.migrations import bundled_migrations
from quasar_tui.store.read import ReadBar, Reader, divides, source_interval
from quasar_tui.store.series import resolve
from quasar_tui.store.tables import BarRow

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
    start = datetime(2026, 3, 7, tzinfo=UTC)
    minutes = random_bars(start, 3 * 60, timedelta(minutes=1), 3)
    del minutes[70]  # no trade at 01:10: a quiet minute, not a hole
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    await db.execute(
        "INSERT INTO gaps (provider, symbol, interval, start_ts, end_ts, reason) "
        "VALUES ('KRAKEN', 'XBT/USD', '1min', $1, $2, 'test')",
        start + timedelta(minutes=30),
        start + timedelta(minutes=31),
    )
    now = start + timedelta(hours=2, minutes=30)  # the 02:00 hour is still forming
    read = await Reader(db, now=lambda: now).bars("KRAKEN:XBT/USD", "1h")
    assert [(b.ts.hour, b.complete) for b in read.bars] == [(0, False), (1, True), (2, False)]
    later = Reader(db, now=lambda: NOW)
    hours = await later.bars("KRAKEN:XBT/USD", "1h")
    assert [b.complete for b in hours.bars] == [False, True, True]  # the open gap stays
    # Collection stopped at 03:00: the 00:00-04:00 bucket is not known to be whole.
    four = await later.bars("KRAKEN:XBT/USD", "4h")
    assert [b.complete for b in four.bars] == [False]
    await db.execute("UPDATE gaps SET resolved_at = now()")
    await store(
        db,
        "historical_data",
        "KRAKEN",
        "XBT/USD",
        "1min",
        random_bars(start + timedelta(hours=4), 1, timedelta(minutes=1), 6),
    )
    # Bars after 04:00 show the first bucket whole; the second has only begun.
    assert [b.complete for b in (await later.bars("KRAKEN:XBT/USD", "4h")).bars] == [True, False]
    assert [b.complete for b in (await later.bars("KRAKEN:XBT/USD", "1min")).bars][-2:] == [
        True,
        True,
    ]


async def test_buckets_where_history_stops_short_of_live_bars_are_incomplete(
    db: Database,
) -> None:
    # A backfill that reached 02:29 and live bars from the next day's 10:00: the hours between
    # hold no bars yet, though they should.
    start = datetime(2026, 3, 9, tzinfo=UTC)
    history = random_bars(start, 150, timedelta(minutes=1), 12)
    live = random_bars(start + timedelta(days=1, hours=10), 90, timedelta(minutes=1), 13)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", history)
    await store(db, "live_data", "KRAKEN", "XBT/USD", "1min", live, trades=1)
    reader = Reader(db, now=lambda: NOW)
    hours = await reader.bars("KRAKEN:XBT/USD", "1h")
    assert [(b.ts.hour, b.complete) for b in hours.bars] == [
        (0, True),
        (1, True),
        (2, False),
        (10, True),
        (11, False),  # the live bars reach 11:30
    ]
    days = await reader.bars("KRAKEN:XBT/USD", "1d")
    assert [b.complete for b in days.bars] == [False, False]
    # Once the backfill reaches the live bars, the hours are whole.
    rest = random_bars(
        history[-1][0] + timedelta(minutes=1), 34 * 60 - 150, timedelta(minutes=1), 14
    )
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", rest)
    whole = (await reader.bars("KRAKEN:XBT/USD", "1h")).bars
    assert len(whole) == 36 and all(b.complete for b in whole[:-1])


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


async def test_bars_and_priority_from_the_command_line(db: Database, run_quasar) -> None:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"), ("BTC/USD", "POLYGON", "X:BTCUSD"))
    minutes = random_bars(datetime(2026, 1, 5, tzinfo=UTC), 120, timedelta(minutes=1), 5)
    await store(db, "historical_data", "POLYGON", "X:BTCUSD", "1min", minutes)
    await store(db, "live_data", "KRAKEN", "XBT/USD", "1min", minutes[:3], trades=4)
    # A live volume summed in floating point shows no noise.
    await db.execute("UPDATE live_data SET volume = 48.03550999999999 WHERE ts = $1", minutes[0][0])

    kraken = run_quasar("bars", "BTC/USD", "--interval", "1h")
    assert kraken.returncode == 0, kraken.stderr
    lines = kraken.stdout.splitlines()
    assert lines[0] == "BTC/USD (KRAKEN:XBT/USD) 1h, derived from 1min"
    assert lines[1].split() == [
        "TS",
        "OPEN",
        "HIGH",
        "LOW",
        "CLOSE",
        "VOLUME",
        "TRADES",
        "COMPLETE",
    ]
    assert lines[2].split()[-1] == "no"  # live bars reach 00:03 only

    chosen = run_quasar("map", "priority", "BTC/USD", "POLYGON")
    assert chosen.returncode == 0 and "BTC/USD: POLYGON" in chosen.stdout
    polygon = run_quasar("bars", "BTC/USD", "-i", "1h", "--json")
    payload = json.loads(polygon.stdout)
    assert payload["series"] == "POLYGON:X:BTCUSD" and payload["derived_from"] == "1min"
    assert [b["complete"] for b in payload["bars"]] == [True, True]
    assert payload["bars"][0]["open"] == minutes[0][1]

    live = run_quasar("bars", "KRAKEN:XBT/USD", "-i", "1min", "--source", "live")
    first = live.stdout.splitlines()[2].split()
    assert first[-3:] == ["48.03551", "4", "yes"], live.stdout
    empty = run_quasar("bars", "BTC/USD", "-i", "1min", "--to", "2020-01-01")
    assert empty.returncode == 1
    assert "no 1min bars of POLYGON:X:BTCUSD in that range" in empty.stderr

    for args, message in [
        (("bars", "ETH/USD", "-i", "1h"), "no series named 'ETH/USD'"),
        (("bars", "BTC/USD", "-i", "1h", "--provider", "EODHD"), "no provider named 'EODHD'"),
        (("map", "priority", "BTC/USD", "EODHD"), "EODHD has no symbol mapped to BTC/USD"),
    ]:
        failed = run_quasar(*args)
        assert failed.returncode == 1, failed.stderr
        assert message in failed.stderr and len(failed.stderr.splitlines()) == 1


def bar_row(symbol: str, bar: tuple) -> BarRow:
    return BarRow("KRAKEN", symbol, "1min", *bar)


TRIGGERS = [
    f"{table}_rollups_{event}"
    for table in ("historical", "live")
    for event in ("insert", "update", "delete")
]


@pytest.fixture(params=["statement triggers", "row triggers"])
async def rollup_triggers(request: pytest.FixtureRequest, db: Database) -> str:
    """As migrated here, or the row triggers TimescaleDB before 2.18 gets: the timescale
    variant of the migration, whose version check finds no TimescaleDB on this server."""
    if request.param == "row triggers":
        (variant,) = [
            m for m in bundled_migrations() if m.version == 51 and m.variant == "timescale"
        ]
        for trigger in TRIGGERS:
            table = trigger.split("_")[0] + "_data"
            await db.execute(f"DROP TRIGGER {trigger} ON {table}")
        await db.execute(variant.sql)
    return request.param


async def test_hours_and_days_follow_every_write_to_their_minutes(
    db: Database, rollup_triggers: str
) -> None:
    # Read as 1h and 1d, the minutes are kept rolled up; every later write (the engine's
    # writer re-fetching a window, a live bar, a deleted hour) shows in the next read.
    minutes = random_bars(datetime(2026, 2, 27, tzinfo=UTC), 3 * 1440, timedelta(minutes=1), 7)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    reader = Reader(db, now=lambda: NOW)

    async def check(bars: list[tuple]) -> None:
        for interval in (Interval.H1, Interval.H4, Interval.D1, Interval.W1, Interval.MO1):
            read = await reader.bars("KRAKEN:XBT/USD", interval)
            assert read.source_interval is Interval.M1
            assert_same(as_tuples(read.bars), resample(bars, interval))

    await check(minutes)
    assert await db.fetchval("SELECT count(*) FROM bar_rollups") == 3 * 24 + 3
    assert await db.fetchval("SELECT count(*) FROM rollup_dirty") == 0

    revised = [(b[0], b[1], b[2] + 50.0, *b[3:]) for b in minutes[600:605]]
    added = random_bars(minutes[-1][0] + timedelta(minutes=1), 90, timedelta(minutes=1), 8)
    writer = Writer(db, EventBus())
    await writer.start()
    await writer.put_bars("historical_data", [bar_row("XBT/USD", b) for b in revised + added])
    await writer.flush()
    await writer.stop()
    live = [(minutes[2000][0], 1.0, 900.0, 0.25, 2.0, 7.0)]
    await store(db, "live_data", "KRAKEN", "XBT/USD", "1min", live, trades=3)
    hour = (minutes[1500][0], minutes[1500][0] + timedelta(hours=1))
    if rollup_triggers == "statement triggers":  # TimescaleDB variants take no DELETE trigger
        await db.execute("DELETE FROM historical_data WHERE ts >= $1 AND ts < $2", *hour)
    else:
        hour = (hour[0], hour[0])

    stored = {b[0]: b for b in [*minutes, *added, *revised]}
    for ts in [ts for ts in stored if hour[0] <= ts < hour[1]]:
        del stored[ts]
    await check(sorted({**stored, live[0][0]: live[0]}.values()))
    # A read of one source derives from its stored minutes, without the live bar.
    historical = await reader.bars("KRAKEN:XBT/USD", "1h", source="historical")
    assert_same(as_tuples(historical.bars), resample(sorted(stored.values()), Interval.H1))


async def test_a_coarser_interval_that_covers_more_serves_the_read(db: Database) -> None:
    # 4h wanted: five days of 1h bars, and 1min bars for only the last half hour.
    start = datetime(2026, 3, 2, tzinfo=UTC)
    hours = random_bars(start, 5 * 24, timedelta(hours=1), 9)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1h", hours)
    recent = random_bars(start + timedelta(days=5), 30, timedelta(minutes=1), 10)
    await store(db, "live_data", "KRAKEN", "XBT/USD", "1min", recent, trades=2)
    reader = Reader(db, now=lambda: NOW)

    read = await reader.bars("KRAKEN:XBT/USD", "4h")
    assert read.source_interval is Interval.H1
    assert_same(as_tuples(read.bars), resample(hours, Interval.H4))
    # Within a range only the minutes reach, the minutes serve it.
    late = await reader.bars("KRAKEN:XBT/USD", "4h", start=start + timedelta(days=5))
    assert late.source_interval is Interval.M1
    assert_same(as_tuples(late.bars), resample(recent, Interval.H4))
    # A stored interval is read as stored, however little of it there is.
    assert (await reader.bars("KRAKEN:XBT/USD", "1min")).source_interval is Interval.M1

    # Once the minutes span as much as the hours, the finer bars win.
    older = random_bars(start, 5 * 1440, timedelta(minutes=1), 11)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", older)
    assert (await reader.bars("KRAKEN:XBT/USD", "4h")).source_interval is Interval.M1
