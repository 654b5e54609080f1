"""Live sessions against a loopback Kraken (WebSocket v2 + REST) and a real PostgreSQL.

Market time is a manual clock shared by the fakes and the session, so minutes of bars pass in
a second. The test only advances it once the session has read every trade already sent, and
by less than the grace: exactly the promise a real feed's latency has to keep.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from fakes.kraken_rest import KrakenRestFake
from fakes.kraken_ws import (
    KrakenMarket,
    KrakenWSFake,
    Trade,
    bars_from_trades,
    stored_live_bars,
)
from helpers import until

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.backoff import Backoff
from quasar_tui.engine.bar_timer import FLUSH_INTERVAL
from quasar_tui.engine.events import EngineError, EventBus, ProviderState
from quasar_tui.engine.live import Backfill, LiveSession, rest_backfill
from quasar_tui.engine.tick_holes import newest_stored, stored_holes
from quasar_tui.engine.writer import Writer
from quasar_tui.providers.kraken import KrakenProvider
from quasar_tui.sandbox.protocol import Live, State
from quasar_tui.sdk import HttpClient, ProviderContext
from quasar_tui.sdk.models import Tick
from quasar_tui.store.database import Database

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
M1, M5 = Interval.M1, Interval.M5
STEP = 2.0  # market seconds per step; below the grace
GRACE = 3.0

Key = tuple[str, str, datetime]


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Rig:
    """Market, fakes, writer and session wired together on one manual clock."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.clock = ManualClock(T0)
        self.market = KrakenMarket(self.clock)
        self.ws = KrakenWSFake(self.market, heartbeat_interval=0.2)
        self.rest = KrakenRestFake(self.market)
        self.bus = EventBus()
        self.events = self.bus.subscribe(maxsize=10_000, kinds=(ProviderState, EngineError))
        self.writer = Writer(db, self.bus, flush_seconds=0.05)
        self.session: LiveSession | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(
        self,
        subs: dict[str, set[Interval]],
        backfill: Backfill | None = None,
        **provider_attrs: float,
    ) -> None:
        await self.ws.start()
        await self.rest.start()
        await self.writer.start()
        await self.connect(subs, backfill, **provider_attrs)

    async def connect(
        self,
        subs: dict[str, set[Interval]],
        backfill: Backfill | None = None,
        *,
        newest_ticks: dict[str, tuple[int, datetime]] | None = None,
        **provider_attrs: float,
    ) -> None:
        """A new session on the running fakes and writer (as a restarted engine has)."""
        http = HttpClient(rate_limit=(100, 1.0), retries=0)
        prefs = {"ws_url": self.ws.url, "rest_url": self.rest.url}
        provider = KrakenProvider(ProviderContext(preferences=prefs, http=http))
        for name, value in provider_attrs.items():
            setattr(provider, name, value)
        self.session = LiveSession(
            "KRAKEN",
            provider,
            self.writer,
            self.bus,
            clock=self.clock,
            grace=GRACE,
            backoff=Backoff(base=0.02, cap=0.1),
            backfill=backfill,
        )
        await self.session.set_subscriptions(subs)
        self.session.resume_ticks(newest_ticks or {})
        self.task = asyncio.create_task(self.session.run())
        for symbol in subs:
            if symbol in self.market.symbols:
                await self.ws.wait_subscribed(symbol)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.stop()
            await self.session.provider.aclose()
        await self.writer.stop()
        await self.ws.stop()
        await self.rest.stop()

    async def caught_up(self) -> None:
        """Until the session has read every trade the fake sent."""
        s = self.session
        await until(lambda: s.stats.ticks + s.stats.duplicates >= self.ws.delivered_trades)

    def errors(self) -> list[str]:
        return [e.message for e in self.events.drain() if isinstance(e, EngineError)]


@pytest.fixture
async def rig(db: Database) -> AsyncIterator[Rig]:
    r = Rig(db)
    yield r
    await r.close()


async def settle(db: Database, expected: dict[Key, tuple]) -> dict[Key, tuple]:
    """The stored bars, once they match `expected` (they are written after the grace)."""

    async def matching() -> dict[Key, tuple] | None:
        stored = await stored_live_bars(db)
        return stored if stored == expected else None

    return await until(matching, "the stored bars to equal the served trades")


async def test_live_bars_equal_served_trades_across_three_disconnects(rig: Rig) -> None:
    subs = {"BTC/USD": {M1, M5}, "ETH/USD": {M1}}
    await rig.start(subs)
    rng = random.Random(20260302)
    prices = {"BTC/USD": 60_000.0, "ETH/USD": 3_000.0}
    outages = {40: 75, 140: 150, 230: 290}  # step the feed is cut -> step it comes back
    sent: dict[str, list[Trade]] = {s: [] for s in subs}

    for step in range(330):
        rig.clock.advance(STEP)
        for symbol in subs:
            offsets = sorted(rng.uniform(0, STEP) for _ in range(rng.randint(0, 4)))
            for offset in offsets:
                prices[symbol] = round(prices[symbol] * (1 + rng.gauss(0, 0.0005)), 2)
                ts = rig.clock.now - timedelta(seconds=STEP - offset)
                side = rng.choice(["buy", "sell"])
                trade = await rig.ws.trade(
                    symbol, prices[symbol], round(rng.uniform(0.001, 2), 4), ts, side
                )
                sent[symbol].append(trade)
        if step % 25 == 3 and sent["BTC/USD"]:
            await rig.ws.resend("BTC/USD", sent["BTC/USD"][-3:])  # re-delivered: not recounted
        if step in outages:
            refused = rig.ws.refused_connects
            rig.ws.refusing = True
            await rig.ws.drop()
            await until(lambda refused=refused: rig.ws.refused_connects > refused)  # retrying
        if step in outages.values():
            connects = rig.ws.connects
            rig.ws.refusing = False
            await until(lambda connects=connects: rig.ws.connects > connects)
            for symbol in subs:
                await rig.ws.wait_subscribed(symbol)
        await rig.caught_up()

    rig.clock.advance(600)  # every bar has closed and every gap can be filled
    expected = {
        **bars_from_trades(rig.market.trades["BTC/USD"], (M1, M5)),
        **bars_from_trades(rig.market.trades["ETH/USD"], (M1,)),
    }
    assert await settle(rig.db, expected) == expected

    session = rig.session
    assert session.stats.connects == 4
    assert rig.ws.refused_connects > 0
    assert session.stats.duplicates > 0
    assert session.stats.backfills >= 3 and session.stats.backfill_failures == 0
    assert len(rig.rest.calls("OHLC")) == session.stats.backfills
    states = [e.state for e in rig.events.drain() if isinstance(e, ProviderState)]
    assert states.count("disconnected") == 3 and states.count("connected") == 4

    await session.stop()
    await rig.writer.flush()
    delivered = {
        (item["symbol"], item["trade_id"])
        for _, m in rig.ws.served
        if m.get("channel") == "trade"
        for item in m["data"]
    }
    made = {(t.symbol, t.trade_id) for trades in rig.market.trades.values() for t in trades}
    assert len(delivered) < len(made)  # trades made during the outages were not seen live
    assert session.holes.filled > 0  # ... so they were fetched from REST Trades
    ticks = await rig.db.fetch("SELECT symbol, seq FROM live_ticks WHERE provider = 'KRAKEN'")
    assert sorted((r["symbol"], r["seq"]) for r in ticks) == sorted(made)


async def test_an_engine_reading_its_feed_later_than_the_grace_writes_every_bar_whole(
    rig: Rig,
) -> None:
    """The session reads each trade 5 s of market time after it was made, more than the
    3 s grace (a backlog): bars close by the feed's time, so none is written short."""
    await rig.start({"BTC/USD": {M1}})
    lag = GRACE + 2
    rig.clock.advance(60)  # the first minute the session observes whole
    for step in range(90):
        rig.clock.advance(STEP)
        for n in range(3):
            ts = rig.clock.now - timedelta(seconds=lag + n * STEP / 3)
            await rig.ws.trade("BTC/USD", 100.0 + step % 7 + n, 1.0 + n / 10, ts)
        await rig.caught_up()
        if GRACE < (rig.clock.now - T0).total_seconds() % 60 <= lag:
            # the bar timer looks now, when a bar closed by the wall clock would lack trades
            await asyncio.sleep(3 * FLUSH_INTERVAL)
    written = await stored_live_bars(rig.db)
    assert written  # bars closed while the backlog was being read ...
    rig.clock.advance(60)  # ... and the stream falls silent: the last one closes too
    live = T0 + timedelta(minutes=1)  # the minute joined came from REST, made late here
    expected = {
        key: bar
        for key, bar in bars_from_trades(rig.market.trades["BTC/USD"], (M1,)).items()
        if key[2] >= live
    }
    stored = await settle(rig.db, {**await stored_live_bars(rig.db), **expected})
    assert {key: bar for key, bar in stored.items() if key[2] >= live} == expected
    counters = rig.session.counters()
    joined = [t for t in rig.market.trades["BTC/USD"] if t.ts < T0 + timedelta(minutes=1)]
    assert counters["history_filled"] == len(joined)  # the minute joined mid-way, from REST
    assert counters["late_dropped"] == 0
    assert counters["late_corrected"] == 0


async def test_a_trade_older_than_its_written_bar_rebuilds_that_bar(rig: Rig) -> None:
    await rig.start({"BTC/USD": {M1, M5}})
    rig.clock.advance(60)
    start = T0 + timedelta(minutes=2)
    for second in (5, 20, 50):
        await rig.ws.trade("BTC/USD", 100.0 + second, 1.0, start + timedelta(seconds=second))
    rig.clock.now = start + timedelta(seconds=80)
    await rig.ws.trade("BTC/USD", 90.0, 1.0, rig.clock.now)  # feed time passes 10:02 + grace
    await rig.caught_up()
    minute = ("BTC/USD", "1min", start)
    await settle(rig.db, {minute: (105.0, 150.0, 105.0, 150.0, 3.0, 3)})
    await rig.ws.trade("BTC/USD", 200.0, 0.5, start + timedelta(seconds=30))  # truly late
    await rig.caught_up()
    rig.clock.advance(400)
    expected = bars_from_trades(rig.market.trades["BTC/USD"], (M1, M5))
    expected[minute] = (105.0, 200.0, 105.0, 150.0, 3.5, 4)  # rebuilt in time order
    assert await settle(rig.db, expected) == expected
    counters = rig.session.counters()
    assert (counters["late_corrected"], counters["bars_corrected"]) == (1, 1)
    assert counters["history_filled"] == 5  # the 5min bar joined mid-way: REST fills it
    assert counters["late_dropped"] == 0


async def test_a_snapshot_keeps_trades_never_delivered_that_are_older_than_the_newest(
    rig: Rig,
) -> None:
    await rig.start({"BTC/USD": {M1}})
    first = await rig.ws.trade("BTC/USD", 100.0, 1.0)
    rig.ws.silent = True  # made while the feed was not delivering
    missed = [await rig.ws.trade("BTC/USD", 101.0 + i, 1.0) for i in range(2)]
    rig.ws.silent = False
    newest = await rig.ws.trade("BTC/USD", 104.0, 1.0)
    await rig.ws.resend("BTC/USD", [first, *missed, newest])
    await rig.caught_up()
    await rig.writer.flush()

    stored = await rig.db.fetch("SELECT seq, price FROM live_ticks ORDER BY seq")
    assert [(r["seq"], r["price"]) for r in stored] == [
        (t.trade_id, t.price) for t in (first, *missed, newest)
    ]
    assert rig.session.stats.duplicates == 2


async def test_a_restarted_session_stores_every_trade_made_while_none_was_connected(
    rig: Rig,
) -> None:
    await rig.start({"BTC/USD": {M1}})
    seen = await rig.ws.trade("BTC/USD", 100.0, 1.0)
    await rig.caught_up()
    await rig.session.stop()
    await rig.session.provider.aclose()
    await rig.writer.flush()
    # No client: the last 50 come back in the subscription's snapshot, the rest from REST.
    missed = [await rig.ws.trade("BTC/USD", 101.0 + i / 100, 0.1) for i in range(80)]
    assert rig.ws.delivered_trades == 1

    newest = await newest_stored(rig.db, "KRAKEN", ["BTC/USD", "ETH/USD"])
    assert newest == {"BTC/USD": (seen.trade_id, seen.ts)}
    await rig.connect({"BTC/USD": {M1}}, newest_ticks=newest)
    latest = await rig.ws.trade("BTC/USD", 105.0, 1.0)
    await until(lambda: rig.session.holes.filled == 30 and rig.session.stats.ticks == 51)
    await rig.writer.flush()

    stored = await rig.db.fetch("SELECT seq, price, size FROM live_ticks ORDER BY seq")
    assert [tuple(r) for r in stored] == [
        (t.trade_id, t.price, t.qty) for t in (seen, *missed, latest)
    ]
    assert len(rig.rest.calls("Trades")) == 1


async def test_a_reconnect_fetches_the_trades_made_beyond_the_snapshot(rig: Rig) -> None:
    await rig.start({"BTC/USD": {M1}, "ETH/USD": {M1}})
    before = [await rig.ws.trade(s, 100.0, 1.0) for s in ("BTC/USD", "ETH/USD")]
    await rig.caught_up()
    refused = rig.ws.refused_connects
    rig.ws.refusing = True
    await rig.ws.drop()
    await until(lambda: rig.ws.refused_connects > refused)
    away = [
        await rig.ws.trade(
            "BTC/USD", 101.0 + i / 100, 0.1, rig.clock.now + timedelta(milliseconds=i)
        )
        for i in range(1200)
    ]
    connects = rig.ws.connects
    rig.ws.refusing = False
    await until(lambda: rig.ws.connects > connects)
    await rig.ws.wait_subscribed("BTC/USD")
    after = await rig.ws.trade("ETH/USD", 99.0, 1.0)  # ETH/USD missed nothing
    await until(lambda: rig.session.holes.filled == 1150)
    await rig.writer.flush()

    stored = await rig.db.fetch("SELECT symbol, seq FROM live_ticks ORDER BY symbol, seq")
    assert [tuple(r) for r in stored] == sorted(
        (t.symbol, t.trade_id) for t in (*before, *away, after)
    )
    assert len(rig.rest.calls("Trades")) == 2  # two pages of 1000, for BTC/USD only
    assert rig.session.holes.pending == 0 and rig.session.holes.failures == 0


async def test_a_feed_whose_trade_ids_skip_is_not_asked_again_and_again(rig: Rig) -> None:
    await rig.start({"BTC/USD": {M1}})
    for price in (100.0, 101.0, 102.0):
        await rig.ws.trade("BTC/USD", price, 1.0)
        rig.market.skip_ids("BTC/USD", 5)  # ids that no trade will ever have
    await rig.ws.trade("BTC/USD", 103.0, 1.0)
    await rig.caught_up()
    await until(lambda: rig.session.holes.given_up)
    await rig.writer.flush()

    assert len(rig.rest.calls("Trades")) == 1
    assert any("not sequential" in e for e in rig.errors())
    assert await rig.db.fetchval("SELECT count(*) FROM live_ticks") == 4


async def test_holes_left_in_stored_ticks_are_found_at_a_start(db: Database) -> None:
    """An engine killed before it fetched a hole: the next start finds it in what is stored."""
    ids = {"BTC/USD": [1, 2, 3, 7, 8, 20], "ETH/USD": [5, 6, 7]}
    rows = [
        ("KRAKEN", symbol, T0 + timedelta(seconds=n), n, 1.0, 1.0, "buy")
        for symbol, seqs in ids.items()
        for n in seqs
    ]
    async with db.pool.acquire() as conn:
        await conn.copy_records_to_table(
            "live_ticks",
            records=rows,
            columns=["provider", "symbol", "ts", "seq", "price", "size", "side"],
        )

    holes = await stored_holes(db, "KRAKEN", ["BTC/USD", "ETH/USD", "XRP/USD"])
    assert holes == [
        ("BTC/USD", 3, T0 + timedelta(seconds=3), 7),
        ("BTC/USD", 8, T0 + timedelta(seconds=8), 20),
    ]


async def test_idle_feed_is_reconnected_by_the_watchdog(rig: Rig) -> None:
    await rig.start({"BTC/USD": {M1}}, IDLE_TIMEOUT=0.5, HEARTBEAT_INTERVAL=0.1)
    await until(lambda: any(m.get("method") == "ping" for _, m in rig.ws.received))

    rig.ws.silence_connections()
    await until(lambda: rig.session.stats.idle_timeouts >= 1)
    await until(lambda: rig.session.stats.connects >= 2 and rig.session.state == "connected")
    await rig.ws.wait_subscribed("BTC/USD")
    assert any("no message for 0.5 s" in m for m in rig.errors())

    rig.clock.advance(65)  # past the first full minute after the reconnect
    await rig.ws.trade("BTC/USD", 100.0, 1.0)
    rig.clock.advance(1)
    await rig.ws.trade("BTC/USD", 99.0, 2.0)
    await rig.caught_up()
    rig.clock.advance(120)
    expected = {("BTC/USD", "1min", T0 + timedelta(minutes=1)): (100.0, 100.0, 99.0, 99.0, 3.0, 2)}
    assert await settle(rig.db, expected) == expected


async def test_server_ping_frames_keep_a_quiet_connection(rig: Rig) -> None:
    await rig.start({"BTC/USD": {M1}}, IDLE_TIMEOUT=2.0, HEARTBEAT_INTERVAL=60.0)
    rig.ws.silent = rig.ws.pinging = True  # no trades, heartbeats or pongs: only pings
    await until(lambda: rig.ws.pings >= 100)  # 5 s of pings every 0.05 s: over twice the limit
    assert rig.session.stats.idle_timeouts == 0 and rig.session.stats.connects == 1
    assert rig.session.state == "connected"


async def test_refused_symbol_is_reported_and_others_keep_streaming(rig: Rig) -> None:
    await rig.start({"BTC/USD": {M1}, "FOO/BAR": {M1}})
    await until(lambda: "FOO/BAR" in rig.session.refused)
    assert rig.errors() == [
        "KRAKEN refused FOO/BAR: Currency pair not supported FOO/BAR",
    ]
    rig.clock.advance(61)
    await rig.ws.trade("BTC/USD", 50.0, 1.0)
    await rig.caught_up()
    rig.clock.advance(120)
    expected = {("BTC/USD", "1min", T0 + timedelta(minutes=1)): (50.0, 50.0, 50.0, 50.0, 1.0, 1)}
    assert await settle(rig.db, expected) == expected
    assert rig.session.stats.connects == 1 and rig.session.state == "connected"

    await rig.ws.drop()  # the refused symbol is not asked for again on reconnect
    await until(lambda: rig.session.stats.connects == 2)
    await rig.ws.wait_subscribed("BTC/USD")
    asked_after = [
        m["params"]["symbol"]
        for n, m in rig.ws.received
        if n > 1 and m.get("method") == "subscribe"
    ]
    assert asked_after and all("FOO/BAR" not in symbols for symbols in asked_after)


async def test_subscription_changes_go_out_on_the_live_connection(rig: Rig) -> None:
    await rig.start({"BTC/USD": {M1}})
    await rig.session.set_subscriptions({"BTC/USD": {M1}, "ETH/USD": {M1}})
    await rig.ws.wait_subscribed("ETH/USD")
    await rig.session.set_subscriptions({"ETH/USD": {M1}})
    await until(lambda: any(m.get("method") == "unsubscribe" for _, m in rig.ws.received))
    unsubscribed = [m["params"] for _, m in rig.ws.received if m.get("method") == "unsubscribe"]
    assert {p["channel"] for p in unsubscribed} == {"trade", "ticker"}
    assert all(p["symbol"] == ["BTC/USD"] for p in unsubscribed)
    assert rig.session.stats.connects == 1


async def test_a_failed_gap_fill_is_reported_and_retried(rig: Rig) -> None:
    calls: list[tuple[datetime, datetime]] = []

    async def flaky(symbol: str, interval: str, start: datetime, end: datetime) -> int:
        calls.append((start, end))
        if len(calls) == 1:
            raise RuntimeError("REST is down")
        session = rig.session
        return await rest_backfill(
            session.provider, rig.writer, "KRAKEN", symbol, interval, start, end
        )

    await rig.start({"BTC/USD": {M1}}, backfill=flaky)
    rig.clock.advance(10)  # inside the minute the session joined: only REST can complete it
    await rig.ws.trade("BTC/USD", 10.0, 1.0)
    await rig.caught_up()
    rig.clock.advance(60)
    await until(lambda: len(calls) == 1)
    assert any(
        "failed (attempt 1, will retry): RuntimeError: REST is down" in m for m in rig.errors()
    )
    rig.clock.advance(5)
    expected = {("BTC/USD", "1min", T0): (10.0, 10.0, 10.0, 10.0, 1.0, 1)}
    assert await settle(rig.db, expected) == expected
    assert calls == [(T0, T0 + timedelta(minutes=1))] * 2
    assert rig.session.stats.connects == 1


class Backlog:
    """A feed's parsed batches all waiting at once, as a host's queue holds them when the
    engine is behind: each is there without a suspension."""

    def __init__(self, batches: list[Live]) -> None:
        self.batches = batches
        self.subs: dict[str, list[Interval]] = {}

    async def set_subscriptions(self, subs: dict[str, list[Interval]]) -> None:
        self.subs = subs

    async def observing(self) -> None:
        raise AssertionError("a backlog never connects")

    async def events(self) -> AsyncIterator[Live | State]:
        for batch in self.batches:
            yield batch
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.batches = []


async def test_a_backlog_of_feed_batches_leaves_the_loop_to_others_between_them(
    db: Database,
) -> None:
    """Routed in one turn of the event loop, seconds of queued trades would starve the
    writer's COPY (PostgreSQL waits for rows) and a console in the same process."""
    bus = EventBus()
    provider = KrakenProvider(ProviderContext(preferences={}, http=HttpClient()))
    session = LiveSession("KRAKEN", provider, Writer(db, bus), bus, store_ticks=False)
    batches = [
        Live(
            messages=30,
            ticks=[
                Tick("XBT/USD", T0 + timedelta(milliseconds=i), 100.0, 1.0, trade_id=i * 300 + k)
                for k in range(300)
            ],
        )
        for i in range(300)
    ]
    session.source = backlog = Backlog(batches)
    await session.set_subscriptions({"XBT/USD": {Interval.M1}})
    assert backlog.subs == {"XBT/USD": [Interval.M1]}
    task = asyncio.create_task(session.run())
    total = 300 * 300
    seen: list[int] = []
    try:
        while session.stats.ticks < total and not task.done():
            seen.append(session.stats.ticks)
            await asyncio.sleep(0)
    finally:
        await session.stop()
        await provider.aclose()
    assert session.stats.ticks == total
    between = {n for n in seen if 0 < n < total}
    assert len(between) >= 5, f"the loop was left to others {len(between)} times"
