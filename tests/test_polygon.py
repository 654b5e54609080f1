"""The bundled Polygon provider against its loopback fake: pagination, keys, bar keys."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.polygon import KEY, FakePolygon
from historical_rig import context, rig, stored, subscribe
from quasar_tui.providers.polygon import Polygon

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk import ProviderHTTPError
from quasar_tui.store.database import Database

NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakePolygon]:
    async with FakePolygon(page_size=100) as server:
        yield server


def polygon(fake: FakePolygon, key: str = KEY, **prefs: str) -> Polygon:
    return Polygon(context({"api_key": key}, fake.base_url, 3, **prefs))


async def test_history_follows_next_url_and_sends_the_key_each_time(fake: FakePolygon) -> None:
    start, end = datetime(2024, 6, 3, tzinfo=UTC), datetime(2024, 6, 6, tzinfo=UTC)
    bars = [
        (b.ts, b.open, b.high, b.low, b.close, b.volume)
        async for b in polygon(fake).get_history("AAPL", start, end, Interval.M5)
    ]
    assert bars == fake.truth("AAPL", Interval.M5, start, end) and len(bars) == 216
    pages = fake.server.requests
    assert [p.status for p in pages] == [200, 200, 200]
    assert [p.query.get("cursor") for p in pages] == [None, "100", "200"]
    assert all(p.query["apiKey"] == KEY for p in pages)
    assert pages[0].query["adjusted"] == "true" and pages[0].query["sort"] == "asc"


@pytest.mark.parametrize(
    ("ticker", "interval", "days"),
    [
        ("AAPL", "1d", 400),
        ("AAPL", "1w", 400),
        ("AAPL", "1M", 700),
        ("X:BTCUSD", "1w", 100),
        ("X:BTCUSD", "1h", 20),
    ],
)
async def test_backfill_stores_bars_under_their_utc_period_start(
    db: Database, fake: FakePolygon, ticker: str, interval: str, days: int
) -> None:
    sub = await subscribe(db, "POLYGON", ticker, interval, days)
    async with rig(db) as r:
        run = await r.run(polygon(fake), sub, NOW)
    iv = Interval.parse(interval)
    expected = fake.truth(ticker, iv, iv.floor(NOW - timedelta(days=days)), iv.floor(NOW))
    assert run.status == "ok" and len(expected) > 10
    assert await stored(db, sub) == expected


async def test_tickers_follow_next_url(fake: FakePolygon) -> None:
    fake.page_size = 1
    symbols = await polygon(fake).fetch_available_symbols()
    assert [s.symbol for s in symbols] == ["AAPL", "MSFT"]
    assert symbols[0].figi == "BBG00000AAPL" and symbols[0].exchange == "XNAS"
    crypto = await polygon(fake, market="crypto").fetch_available_symbols()
    assert [(s.symbol, s.base, s.quote) for s in crypto] == [("X:BTCUSD", "BTC", "USD")]


async def test_a_rejected_key_is_one_clear_line_and_never_shown(
    fake: FakePolygon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-polygon-key-456"
    with pytest.raises(ProviderHTTPError) as raised:
        async for _ in polygon(fake, secret).get_history(
            "AAPL", NOW - timedelta(days=3), NOW, Interval.D1
        ):
            pass
    assert str(raised.value) == (
        "POLYGON rejected the API key: set it with quasar provider secret POLYGON api_key=..."
    )
    assert secret not in caplog.text


async def test_rate_limit_answers_are_waited_out(db: Database, fake: FakePolygon) -> None:
    fake.server.fail_next(3, 429, retry_after=0.05)
    sub = await subscribe(db, "POLYGON", "X:BTCUSD", "1h", 10)
    async with rig(db) as r:
        run = await r.run(polygon(fake), sub, NOW)
    assert run.status == "ok"
    assert [s.status for s in fake.server.requests[:4]] == [429, 429, 429, 200]
    assert await stored(db, sub) == fake.truth(
        "X:BTCUSD",
        Interval.H1,
        Interval.H1.floor(NOW - timedelta(days=10)),
        Interval.H1.floor(NOW),
    )
