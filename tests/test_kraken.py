"""The Kraken provider against loopback fakes of its WebSocket v2 and REST APIs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.kraken_rest import KrakenRestFake
from fakes.kraken_ws import KrakenMarket, KrakenWSFake

from quasar_tui.core.intervals import Interval
from quasar_tui.providers.kraken import KrakenProvider
from quasar_tui.sdk import Bar, HttpClient, ProviderContext, Quote, SubscriptionRefused, Tick

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)


class Fakes:
    def __init__(self) -> None:
        self.now = NOW
        self.market = KrakenMarket(lambda: self.now)
        self.ws = KrakenWSFake(self.market, heartbeat_interval=0.2)
        self.rest = KrakenRestFake(self.market)

    def provider(self, **prefs: str) -> KrakenProvider:
        preferences = {"ws_url": self.ws.url, "rest_url": self.rest.url, **prefs}
        http = HttpClient(rate_limit=(100, 1.0), retries=0)
        return KrakenProvider(ProviderContext(preferences=preferences, http=http))


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    f = Fakes()
    await f.ws.start()
    await f.rest.start()
    yield f
    await f.ws.stop()
    await f.rest.stop()


async def test_symbols_use_v2_names_and_skip_dark_pools(fakes: Fakes) -> None:
    provider = fakes.provider()
    symbols = {s.symbol: s for s in await provider.fetch_available_symbols()}
    assert sorted(symbols) == ["BTC/USD", "DOGE/USD", "ETH/USD"]
    btc = symbols["BTC/USD"]
    assert (btc.base, btc.quote, btc.provider_id, btc.asset_class) == (
        "BTC",
        "USD",
        "XXBTZUSD",
        "crypto",
    )
    await provider.aclose()


async def test_history_drops_the_unfinished_candle_and_reads_strings(fakes: Fakes) -> None:
    minute = NOW.replace(second=0) - timedelta(minutes=3)
    for i, (price, qty) in enumerate([(100.5, 1.0), (101.25, 0.5), (99.0, 2.0)]):
        fakes.market.record("BTC/USD", price, qty, minute + timedelta(seconds=10 * i), "buy")
    fakes.market.record("BTC/USD", 102.0, 1.0, minute + timedelta(minutes=1, seconds=5), "sell")
    fakes.market.record("BTC/USD", 103.0, 1.0, NOW - timedelta(seconds=5), "buy")  # open candle
    provider = fakes.provider()

    bars = [
        b
        async for b in provider.get_history(
            "BTC/USD", minute, NOW + timedelta(minutes=5), Interval.M1
        )
    ]
    assert bars == [
        Bar(
            ts=minute,
            open=100.5,
            high=101.25,
            low=99.0,
            close=99.0,
            volume=3.5,
            symbol="BTC/USD",
            trades=3,
            interval=Interval.M1,
        ),
        Bar(
            ts=minute + timedelta(minutes=1),
            open=102.0,
            high=102.0,
            low=102.0,
            close=102.0,
            volume=1.0,
            symbol="BTC/USD",
            trades=1,
            interval=Interval.M1,
        ),
    ]
    assert fakes.rest.calls("OHLC")[-1]["pair"] == "XBTUSD"  # REST wants the altname
    await provider.aclose()


async def test_history_older_than_the_ohlc_window_comes_from_trades(fakes: Fakes) -> None:
    start = NOW.replace(second=0) - timedelta(minutes=800)
    expected: list[Bar] = []
    for i in range(800):
        minute = start + timedelta(minutes=i)
        count = 15 if i < 100 else 2  # over 1000 trades before the OHLC window: two pages
        prices = [2000.0 + (i * 7 + j * 3) % 11 for j in range(count)]
        for j, price in enumerate(prices):
            fakes.market.record("ETH/USD", price, 0.25, minute + timedelta(seconds=4 * j), "buy")
        expected.append(
            Bar(
                ts=minute,
                open=prices[0],
                high=max(prices),
                low=min(prices),
                close=prices[-1],
                volume=0.25 * count,
                symbol="ETH/USD",
                trades=count,
                interval=Interval.M1,
            )
        )
    provider = fakes.provider()

    bars = [b async for b in provider.get_history("ETH/USD", start, NOW, Interval.M1)]
    assert bars == expected
    assert len(fakes.rest.calls("Trades")) == 2
    await provider.aclose()


async def test_unknown_pair_is_a_clear_error(fakes: Fakes) -> None:
    provider = fakes.provider()
    with pytest.raises(ValueError, match="Kraken has no pair 'FOO/BAR'"):
        [
            b
            async for b in provider.get_history(
                "FOO/BAR", NOW - timedelta(hours=1), NOW, Interval.M1
            )
        ]
    await provider.aclose()


async def test_channels_preference_is_checked(fakes: Fakes) -> None:
    provider = fakes.provider(channels="trade,book")
    with pytest.raises(ValueError, match="unknown Kraken channel"):
        await provider._subscribe(Interval.M1, ["BTC/USD"])


async def test_websocket_session_speaks_v2(fakes: Fakes) -> None:
    provider = fakes.provider()
    conn = await provider._connect()
    try:
        messages = await provider._subscribe(Interval.M1, ["BTC/USD", "NOPE/USD"])
        assert [m["params"]["channel"] for m in messages] == ["trade", "ticker"]
        assert messages[0]["params"]["snapshot"] is True  # recovers missed trades
        assert await provider._subscribe(Interval.M5, ["BTC/USD"]) == []  # already streaming
        for m in messages:
            await conn.send(json.dumps(m))
        await conn.send(json.dumps(await provider._heartbeat()))
        await fakes.ws.wait_subscribed("BTC/USD", "ticker")
        first = await fakes.ws.trade("BTC/USD", 100.0, 0.5, NOW)
        await fakes.ws.trade("BTC/USD", 101.0, 0.25, NOW + timedelta(seconds=1), side="sell")
        await fakes.ws.ticker("BTC/USD", bid=100.5, ask=101.5, last=101.0)

        records: list = []
        while not any(isinstance(r, Quote) for r in records):
            records.extend(await provider._parse_message(await conn.recv()))
    finally:
        await conn.close()

    assert [r for r in records if isinstance(r, SubscriptionRefused)] == [
        SubscriptionRefused(
            symbol="NOPE/USD", reason="Currency pair not supported NOPE/USD", channel=None
        ),
        SubscriptionRefused(
            symbol="NOPE/USD", reason="Currency pair not supported NOPE/USD", channel=None
        ),
    ]
    ticks = [r for r in records if isinstance(r, Tick)]
    assert ticks == [
        Tick(symbol="BTC/USD", ts=NOW, price=100.0, size=0.5, side="buy", trade_id=first.trade_id),
        Tick(
            symbol="BTC/USD",
            ts=NOW + timedelta(seconds=1),
            price=101.0,
            size=0.25,
            side="sell",
            trade_id=first.trade_id + 1,
        ),
    ]
    quote = next(r for r in records if isinstance(r, Quote))
    assert (quote.bid, quote.ask, quote.last, quote.change_pct) == (100.5, 101.5, 101.0, 0.25)
    assert fakes.ws.messages(method="pong")  # the application ping was answered


async def test_candles_and_housekeeping_messages_parse() -> None:
    provider = KrakenProvider()
    ohlc = {
        "channel": "ohlc",
        "type": "update",
        "data": [
            {
                "symbol": "ETH/USD",
                "open": 2000.1,
                "high": 2001.0,
                "low": 1999.5,
                "close": 2000.7,
                "vwap": 2000.3,
                "trades": 12,
                "volume": 3.5,
                "interval_begin": "2026-03-02T12:05:00Z",
                "interval": 5,
                "timestamp": "2026-03-02T12:07:13.123456Z",
            }
        ],
    }
    assert await provider._parse_message(json.dumps(ohlc)) == [
        Bar(
            ts=datetime(2026, 3, 2, 12, 5, tzinfo=UTC),
            open=2000.1,
            high=2001.0,
            low=1999.5,
            close=2000.7,
            volume=3.5,
            symbol="ETH/USD",
            trades=12,
            interval=Interval.M5,
        )
    ]
    for quiet in (
        {"channel": "heartbeat"},
        {"channel": "status", "data": [{}]},
        {"method": "pong", "req_id": 3},
        {"method": "subscribe", "success": True, "result": {"channel": "trade"}},
    ):
        assert await provider._parse_message(json.dumps(quiet)) == []


async def test_busy_channels_read_strings_stamps_and_refuse_malformed_messages() -> None:
    """Trades and tickers are decoded in one pass: numbers sent as strings still read, a
    ticker's own timestamp is kept, and a malformed trade message is an error (counted as a
    bad message by the session), not a silently empty one."""
    provider = KrakenProvider()
    trade = {
        "channel": "trade",
        "type": "update",
        "data": [
            {
                "symbol": "BTC/USD",
                "side": "sell",
                "price": "64000.5",
                "qty": "0.25",
                "ord_type": "market",
                "trade_id": 77,
                "timestamp": "2026-03-02T12:00:30.250000Z",
            }
        ],
    }
    assert await provider._parse_message(json.dumps(trade).encode()) == [
        Tick("BTC/USD", NOW + timedelta(milliseconds=250), 64000.5, 0.25, "sell", 77)
    ]
    ticker = {
        "channel": "ticker",
        "type": "snapshot",
        "data": [
            {
                "symbol": "ETH/USD",
                "bid": 2000.0,
                "bid_qty": 3.0,
                "ask": 2000.5,
                "ask_qty": 1.0,
                "last": 2000.2,
                "volume": 812.5,
                "change_pct": -1.5,
                "timestamp": "2026-03-02T12:00:30Z",
            }
        ],
    }
    assert await provider._parse_message(json.dumps(ticker)) == [
        Quote("ETH/USD", NOW, bid=2000.0, ask=2000.5, last=2000.2, volume=812.5, change_pct=-1.5)
    ]
    del trade["data"][0]["price"]
    with pytest.raises(ValueError, match="price"):
        await provider._parse_message(json.dumps(trade))
