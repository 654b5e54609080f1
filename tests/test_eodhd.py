"""The bundled EODHD provider against its loopback fake: endpoints, keys, symbols, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.eodhd import TOKEN, FakeEodhd
from historical_rig import context, rig, subscribe
from quasar_tui.providers.eodhd import EODHD

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk import ProviderHTTPError, SymbolInfo
from quasar_tui.store.database import Database

START = datetime(2024, 1, 2, 13, 0, tzinfo=UTC)
END = datetime(2024, 1, 4, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeEodhd]:
    async with FakeEodhd() as server:
        yield server


def eodhd(fake: FakeEodhd, token: str | None = TOKEN, **prefs: str) -> EODHD:
    return EODHD(context({"api_token": token} if token else {}, fake.base_url, 1, **prefs))


async def history(provider: EODHD, symbol: str, interval: Interval, start=START, end=END):
    return [
        (b.ts, b.open, b.high, b.low, b.close, b.volume)
        async for b in provider.get_history(symbol, start, end, interval)
    ]


@pytest.mark.parametrize("interval", [Interval.M1, Interval.M5, Interval.H1, Interval.D1])
async def test_bars_match_what_was_served(fake: FakeEodhd, interval: Interval) -> None:
    got = await history(eodhd(fake), "AAPL.US", interval)
    assert got == fake.truth("AAPL.US", interval, START, END)
    assert got and got[0][0] >= START and got[-1][0] < END
    [seen] = fake.server.requests
    endpoint = "/api/eod/AAPL.US" if interval is Interval.D1 else "/api/intraday/AAPL.US"
    assert seen.path == endpoint and seen.query["fmt"] == "json"


async def test_symbols_from_every_listed_exchange(fake: FakeEodhd) -> None:
    symbols = await eodhd(fake, exchanges="us, CC").fetch_available_symbols()
    by_symbol = {s.symbol: s for s in symbols}
    assert sorted(by_symbol) == ["AAPL.US", "BTC-USD.CC", "MSFT.US"]
    aapl = by_symbol["AAPL.US"]
    assert (aapl.asset_class, aapl.exchange, aapl.quote) == ("Common Stock", "NASDAQ", "USD")
    assert aapl.provider_id is not None and aapl.provider_id.startswith("US")
    assert by_symbol["BTC-USD.CC"] == SymbolInfo(
        "BTC-USD.CC", "BTC-USD Crypto", "CC", "Currency", "BTC", "USD", None
    )
    assert [r.path for r in fake.server.requests] == [
        "/api/exchange-symbol-list/US",
        "/api/exchange-symbol-list/CC",
    ]


async def test_a_rejected_token_is_one_clear_line_and_never_shown(
    fake: FakeEodhd, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "not-the-right-token-123"
    with pytest.raises(ProviderHTTPError) as raised:
        await history(eodhd(fake, secret), "AAPL.US", Interval.D1)
    message = "EODHD rejected the API token: set it with quasar provider secret EODHD api_token=..."
    assert str(raised.value) == message
    sub = await subscribe(db, "EODHD", "AAPL.US", "1d", 10)
    async with rig(db) as r:
        run = await r.run(eodhd(fake, secret), sub, END)
    assert run.status == "failed" and message in (run.error or "")
    stored_error = await db.fetchval("SELECT error FROM collection_runs")
    gap_error = await db.fetchval("SELECT last_error FROM gaps")
    assert message in stored_error and message in gap_error
    assert secret not in caplog.text and secret not in stored_error + gap_error


async def test_a_missing_token_asks_for_one_without_calling(fake: FakeEodhd) -> None:
    with pytest.raises(ProviderHTTPError, match="quasar provider secret EODHD api_token="):
        await history(eodhd(fake, None), "AAPL.US", Interval.D1)
    assert fake.requests() == 0


async def test_a_spent_quota_says_so(fake: FakeEodhd) -> None:
    fake.quota_spent = True
    with pytest.raises(ProviderHTTPError, match="daily quota is spent"):
        await history(eodhd(fake), "AAPL.US", Interval.D1)


async def test_an_unknown_symbol_says_what_symbols_look_like(fake: FakeEodhd) -> None:
    with pytest.raises(ProviderHTTPError, match=r"does not know this symbol \(symbols look like"):
        await history(eodhd(fake), "NOPE.US", Interval.D1)


async def test_intervals_eodhd_lacks_are_refused(fake: FakeEodhd) -> None:
    with pytest.raises(ValueError, match="EODHD has no 15min bars"):
        await history(eodhd(fake), "AAPL.US", Interval.M15)
    assert Interval.M15 not in EODHD.INTERVALS and fake.requests() == 0


async def test_intraday_requests_stay_within_eodhd_limits(fake: FakeEodhd) -> None:
    provider = eodhd(fake)
    long = (START, START + EODHD.MAX_RANGE[Interval.M1] + timedelta(days=1))
    with pytest.raises(ProviderHTTPError, match="HTTP 422"):
        await history(provider, "BTC-USD.CC", Interval.M1, *long)
    assert len(await history(provider, "BTC-USD.CC", Interval.H1, *long)) == 121 * 24


async def test_dropped_connections_are_retried(fake: FakeEodhd) -> None:
    fake.server.drop_next(2, path="/api/eod")
    got = await history(
        EODHD(context({"api_token": TOKEN}, fake.base_url, 3)), "AAPL.US", Interval.D1
    )
    assert got == fake.truth("AAPL.US", Interval.D1, START, END)
    assert [s.status for s in fake.server.requests] == [0, 0, 200]
