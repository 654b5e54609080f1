"""Historical collection end to end: the EODHD provider against its loopback fake, the real
writer and a real PostgreSQL. Every test compares the stored bars with what was served."""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fakes.eodhd import TOKEN, FakeEodhd
from fakes.market import Market
from historical_rig import Sub, context, gaps, rig, stored, subscribe
from registry_rows import add_provider

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.events import JobRun
from quasar_tui.engine.planner import find_holes, plan_ranges
from quasar_tui.providers.eodhd import EODHD
from quasar_tui.quality.assigned import calendar_of
from quasar_tui.quality.calendars import WEEKDAYS, calendar
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk import Bar
from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database

NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)  # a Wednesday


def truth(fake: FakeEodhd, sub: Sub, now: datetime = NOW) -> list:
    interval = Interval.parse(sub.interval)
    start = interval.floor(now - timedelta(days=sub.lookback_days))
    return fake.truth(sub.symbol, interval, start, interval.floor(now))


@pytest.fixture
async def eodhd() -> AsyncIterator[FakeEodhd]:
    async with FakeEodhd() as fake:
        yield fake


def provider(fake: FakeEodhd, retries: int = 3) -> EODHD:
    return EODHD(context({"api_token": TOKEN}, fake.base_url, retries))


async def test_full_backfill_matches_served_data_and_a_rerun_fetches_nothing(
    db: Database, eodhd: FakeEodhd
) -> None:
    sub = await subscribe(db, "EODHD", "AAPL.US", "1d", 400)
    source = provider(eodhd)
    async with rig(db) as r:
        runs = r.bus.subscribe(kinds=(JobRun,))
        first = await r.run(source, sub, NOW)
        requests = eodhd.requests()
        second = await r.run(source, sub, NOW)
    expected = truth(eodhd, sub)
    assert len(expected) > 250
    assert await stored(db, sub) == expected
    assert (first.status, first.rows, first.error) == ("ok", len(expected), None)
    assert (second.status, second.rows) == ("ok", 0)
    assert eodhd.requests() == requests
    assert [run.rows for run in runs.drain()] == [len(expected), 0]
    recorded = await db.fetch(
        "SELECT subscription_id, status, rows_written FROM collection_runs ORDER BY id"
    )
    assert [tuple(x) for x in recorded] == [(sub.id, "ok", len(expected)), (sub.id, "ok", 0)]


@pytest.mark.parametrize(
    ("interval", "start_of"), [("1w", lambda ts: ts.weekday()), ("1M", lambda ts: ts.day - 1)]
)
async def test_weekly_and_monthly_bars_are_keyed_to_the_period_start(
    db: Database, interval: str, start_of
) -> None:
    # 2024-05-27 is a holiday Monday: EODHD dates that week on the Tuesday
    async with FakeEodhd(market=Market(holidays={date(2024, 5, 27)})) as fake:
        sub = await subscribe(db, "EODHD", "MSFT.US", interval, 700)
        async with rig(db) as r:
            run = await r.run(provider(fake), sub, NOW)
        rows = await stored(db, sub)
        assert run.status == "ok"
        assert rows == truth(fake, sub) and len(rows) > 20
    assert {start_of(ts) for ts, *_ in rows} == {0}
    assert {(ts.hour, ts.minute, ts.utcoffset()) for ts, *_ in rows} == {(0, 0, timedelta(0))}


async def test_a_resumed_run_fetches_only_what_is_missing(db: Database, eodhd: FakeEodhd) -> None:
    sub = await subscribe(db, "EODHD", "AAPL.US", "1d", 60)
    later = NOW + timedelta(days=9)
    async with rig(db) as r:
        await r.run(provider(eodhd), sub, NOW)
        last_before = (await stored(db, sub))[-1][0]
        before = eodhd.requests()
        run = await r.run(provider(eodhd), sub, later)
    assert eodhd.requests() == before + 1
    asked = eodhd.server.requests[-1].query
    assert asked["from"] == (last_before + timedelta(days=1)).date().isoformat()
    assert asked["to"] == (Interval.D1.floor(later) - timedelta(days=1)).date().isoformat()
    full = truth(eodhd, Sub(sub.id, sub.provider, sub.symbol, "1d", 69), later)
    assert await stored(db, sub) == full
    assert run.rows == len(full) - len(truth(eodhd, sub))


async def test_a_hole_in_the_middle_is_found_by_the_audit_and_filled(
    db: Database, eodhd: FakeEodhd
) -> None:
    sub = await subscribe(db, "EODHD", "AAPL.US", "1d", 200)
    expected = truth(eodhd, sub)
    holes = [expected[50][0], expected[51][0], expected[52][0], expected[120][0]]
    async with rig(db) as r:
        await r.run(provider(eodhd), sub, NOW)
        await db.execute(
            """DELETE FROM historical_data WHERE symbol = 'AAPL.US' AND ts = ANY($1)""", holes
        )
        assert len(await stored(db, sub)) == len(expected) - 4
        run = await r.run(provider(eodhd), sub, NOW, audit=True)
    assert await stored(db, sub) == expected
    assert run.status == "ok" and run.rows > 0
    found = [(g[0], g[3]) for g in await gaps(db, sub) if g[2] == "audit"]
    assert found == [(holes[0], "filled"), (holes[3], "filled")]


async def test_a_holiday_is_asked_for_once_then_left_alone(db: Database) -> None:
    holiday = date(2024, 3, 29)  # a Friday the fake's exchange is closed
    market = Market(holidays={holiday})
    async with FakeEodhd(market=market) as fake:
        sub = await subscribe(db, "EODHD", "AAPL.US", "1d", 200)
        async with rig(db) as r:
            await r.run(provider(fake), sub, NOW)
            before = fake.requests()
            audited = await r.run(provider(fake), sub, NOW + timedelta(hours=7))
            after_audit = fake.requests()
            again = await r.run(provider(fake), sub, NOW + timedelta(hours=8), audit=True)
        assert (audited.status, audited.rows, again.status, again.rows) == ("ok", 0, "ok", 0)
        assert after_audit == before + 1 and fake.requests() == after_audit
        friday, monday = datetime(2024, 3, 29, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
        assert await gaps(db, sub) == [(friday, monday, "audit", "empty")]
        assert await stored(db, sub) == truth(fake, sub)


async def test_a_429_storm_with_retry_after_is_survived(db: Database, eodhd: FakeEodhd) -> None:
    sub = await subscribe(db, "EODHD", "AAPL.US", "1d", 100)
    eodhd.server.fail_next(4, 429, retry_after=0.1, path="/api/eod")
    async with rig(db) as r:
        run = await r.run(provider(eodhd, retries=5), sub, NOW)
    assert run.status == "ok"
    assert await stored(db, sub) == truth(eodhd, sub)
    seen = eodhd.server.requests
    assert [s.status for s in seen] == [429, 429, 429, 429, 200]
    waits = [b.at - a.at for a, b in itertools.pairwise(seen)]
    assert min(waits) >= 0.09  # each retry waited as long as Retry-After said


async def test_a_chunk_that_keeps_failing_becomes_a_gap_filled_by_the_next_run(
    db: Database, eodhd: FakeEodhd
) -> None:
    sub = await subscribe(db, "EODHD", "BTC-USD.CC", "5min", 2)
    source = provider(eodhd, retries=2)
    source.MAX_RANGE = {Interval.M5: timedelta(hours=12)}  # four chunks for two days
    eodhd.server.fail_next(7, 500, path="/api/intraday")  # 3 tries each for 2 chunks, +1
    async with rig(db) as r:
        first = await r.run(source, sub, NOW)
        partial = await stored(db, sub)
        open_gaps = await gaps(db, sub)
        second = await r.run(source, sub, NOW)
    expected = truth(eodhd, sub)
    start = expected[0][0]
    assert first.status == "partial" and "2 of 4 chunks failed" in (first.error or "")
    assert partial == [row for row in expected if row[0] >= start + timedelta(hours=24)]
    assert open_gaps == [(start, start + timedelta(hours=24), "fetch_failed", None)]
    assert (second.status, second.error) == ("ok", None)
    assert await stored(db, sub) == expected
    assert await gaps(db, sub) == [(start, start + timedelta(hours=24), "fetch_failed", "filled")]


async def test_intraday_backfill_is_at_minute_granularity(db: Database, eodhd: FakeEodhd) -> None:
    sub = await subscribe(db, "EODHD", "BTC-USD.CC", "1min", 1)
    now = datetime(2024, 6, 12, 10, 37, 20, tzinfo=UTC)
    later = datetime(2024, 6, 12, 10, 45, 5, tzinfo=UTC)
    async with rig(db) as r:
        await r.run(provider(eodhd), sub, now)
        rows = await stored(db, sub)
        assert (rows[0][0], rows[-1][0], len(rows)) == (
            datetime(2024, 6, 11, 10, 37, tzinfo=UTC),
            datetime(2024, 6, 12, 10, 36, tzinfo=UTC),
            1440,
        )
        run = await r.run(provider(eodhd), sub, later)
    assert run.rows == 8  # 10:37 .. 10:44, the bars closed since
    asked = eodhd.server.requests[-1].query
    assert int(asked["from"]) == int(datetime(2024, 6, 12, 10, 37, tzinfo=UTC).timestamp())
    assert int(asked["to"]) == int(datetime(2024, 6, 12, 10, 45, tzinfo=UTC).timestamp()) - 1
    assert await stored(db, sub) == eodhd.truth(
        "BTC-USD.CC", Interval.M1, rows[0][0], datetime(2024, 6, 12, 10, 45, tzinfo=UTC)
    )


class Flaky:
    """A provider whose second chunk raises and whose bars are partly invalid."""

    MAX_RANGE = {Interval.D1: timedelta(days=10)}

    def __init__(self) -> None:
        self.calls = 0

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("upstream exploded")
        for ts in interval.starts(start, end):
            yield Bar(ts, 1.0, 2.0, 0.5, 1.5, 10.0)
        yield Bar(start + timedelta(hours=3), 1.0, 2.0, 0.5, 1.5)  # not on a bar start
        yield Bar(end - timedelta(days=1), math.nan, 2.0, 0.5, 1.5)  # repeated, NaN


async def test_a_raising_provider_loses_one_chunk_and_invalid_bars_are_reported(
    db: Database,
) -> None:
    sub = await subscribe(db, "FLAKY", "X", "1d", 30)
    source = Flaky()
    async with rig(db) as r:
        run = await r.run(source, sub, NOW)
    assert source.calls == 3
    assert run.status == "partial"
    assert run.error is not None
    assert "1 of 3 chunks failed, first: RuntimeError: upstream exploded" in run.error
    assert "4 invalid bars dropped, first: not on a 1d bar start" in run.error
    assert len(await stored(db, sub)) == 20


async def test_an_interval_the_provider_lacks_fails_with_a_clear_message(
    db: Database, eodhd: FakeEodhd
) -> None:
    sub = await subscribe(db, "EODHD", "AAPL.US", "15min", 5)
    async with rig(db) as r:
        run = await r.run(provider(eodhd), sub, NOW)
    assert run.status == "failed"
    assert run.error == "EODHD does not offer 15min bars (it offers: 1min 5min 1h 1d 1w 1M)"
    assert eodhd.requests() == 0


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_plans_only_closed_bars_in_chunks_at_the_interval_grain() -> None:
    ranges = plan_ranges(
        Interval.M1,
        utc(2024, 1, 1, 0, 0, 30),
        utc(2024, 1, 1, 5, 7, 59),
        None,
        max_range=timedelta(hours=2),
    )
    assert ranges == [
        (utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 2, 0)),
        (utc(2024, 1, 1, 2, 0), utc(2024, 1, 1, 4, 0)),
        (utc(2024, 1, 1, 4, 0), utc(2024, 1, 1, 5, 7)),
    ]


def test_plans_resume_after_the_last_bar_and_merge_only_nearby_gaps() -> None:
    gaps = [
        (utc(2024, 1, 3), utc(2024, 1, 3, 5)),
        (utc(2024, 1, 4), utc(2024, 1, 4, 2)),
        (utc(2024, 3, 1, 7, 30), utc(2024, 3, 1, 9)),
    ]
    ranges = plan_ranges(
        Interval.H1,
        utc(2023, 1, 1),
        utc(2024, 6, 1, 12, 5),
        utc(2024, 6, 1, 9),
        gaps,
        max_range=timedelta(days=10),
    )
    assert ranges == [
        (utc(2024, 1, 3), utc(2024, 1, 4, 2)),
        (utc(2024, 3, 1, 7), utc(2024, 3, 1, 9)),
        (utc(2024, 6, 1, 10), utc(2024, 6, 1, 12)),
    ]


def test_weekend_only_spans_are_not_asked_for_a_weekday_series() -> None:
    friday, monday = utc(2024, 6, 7), utc(2024, 6, 10, 10)
    assert plan_ranges(Interval.D1, friday, monday, friday, calendar=calendar(WEEKDAYS)) == []
    assert plan_ranges(Interval.D1, friday, monday, friday) == [(utc(2024, 6, 8), utc(2024, 6, 10))]


def test_holes_between_stored_bars() -> None:
    wed, fri, mon = utc(2024, 6, 5), utc(2024, 6, 7), utc(2024, 6, 10)
    assert find_holes(Interval.D1, [(wed, mon), (fri, mon)], calendar=calendar(WEEKDAYS)) == [
        (utc(2024, 6, 6), mon)
    ]
    assert find_holes(
        Interval.MO1, [(utc(2024, 1, 1), utc(2024, 3, 1)), (utc(2024, 3, 1), utc(2024, 4, 1))]
    ) == [(utc(2024, 2, 1), utc(2024, 3, 1))]
    assert find_holes(
        Interval.D1, [], lookback_start=utc(2024, 1, 1, 12), first_stored=utc(2024, 2, 1)
    ) == [(utc(2024, 1, 1), utc(2024, 2, 1))]


def test_an_exchange_holiday_is_neither_fetched_nor_a_hole() -> None:
    nyse = calendar("XNYS")
    wed, thu, fri = utc(2026, 11, 25), utc(2026, 11, 26), utc(2026, 11, 27)  # Thanksgiving
    assert plan_ranges(Interval.D1, wed, utc(2026, 11, 27, 5), wed, calendar=nyse) == []
    assert plan_ranges(Interval.D1, wed, utc(2026, 11, 28, 5), wed, calendar=nyse) == [
        (thu, utc(2026, 11, 28))
    ]
    assert find_holes(Interval.D1, [(wed, utc(2026, 11, 30))], calendar=nyse) == [
        (fri, utc(2026, 11, 30))
    ]
    assert find_holes(Interval.D1, [(wed, fri)], calendar=nyse) == []
    # Intraday: the night between two sessions is no hole; the early close ends the day.
    assert (
        find_holes(Interval.H1, [(utc(2026, 11, 25, 20), utc(2026, 11, 27, 14))], calendar=nyse)
        == []
    )


async def test_a_series_follows_its_assets_calendar_or_the_subscriptions(db: Database) -> None:
    await add_provider(
        db,
        "EODHD",
        assets=[SymbolInfo("AAPL.US", exchange="US"), SymbolInfo("BTC-USD.CC", exchange="CC")],
    )
    assert (await calendar_of(db, "EODHD", "AAPL.US", "1d")).name == "XNYS"
    assert (await calendar_of(db, "EODHD", "BTC-USD.CC", "1d")).name == "24/7"
    assert await calendar_of(db, "EODHD", "UNKNOWN", "1d") is None
    await SubscriptionStore(db).add("EODHD", ["AAPL.US"], "1d", "historical", calendar="XLON")
    assert (await calendar_of(db, "EODHD", "AAPL.US", "1d")).name == "XLON"


class Patchy:
    """Daily bars, but none for `missing` until `fixed`: then a bad one (low above the close)."""

    def __init__(self, missing: datetime) -> None:
        self.missing = missing
        self.fixed = False

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        for ts in interval.starts(start, end):
            price = 10.0 + ts.day / 100  # no two neighbours alike
            if ts != self.missing:
                yield Bar(ts, price, price + 1, price - 1, price + 0.5, 100.0)
            elif self.fixed:
                yield Bar(ts, price, price + 2, price + 1, price + 0.5, 100.0)


async def test_bars_are_flagged_after_each_run_holes_filled_behind_the_last_pass_too(
    db: Database,
) -> None:
    sub = await subscribe(db, "PATCHY", "X", "1d", 30)
    missing = Interval.D1.floor(NOW) - timedelta(days=10)
    source = Patchy(missing)
    async with rig(db) as r:
        await r.run(source, sub, NOW)
        checked = await db.fetchval("SELECT checked_to FROM quality_checks")
        assert checked == Interval.D1.floor(NOW) - timedelta(days=1)  # the new bars: checked
        source.fixed = True  # the provider has the missing day now, and it is a bad print
        run = await r.run(source, sub, NOW, audit=True)
    assert run.rows == 1
    flagged = await db.fetch("SELECT ts, flags FROM bar_flags")
    assert [(f["ts"], f["flags"]) for f in flagged] == [(missing, 1)]
