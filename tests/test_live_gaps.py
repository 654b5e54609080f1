"""Live spans to fill from REST history are filled, whatever happens while they wait.

Both found by the fault drills (bench/drills.py):
- SIGKILL drill: bars newer than a span waiting for its REST fill were stored, the engine died,
  and the next one resumed after the newest stored bar, so the span stayed empty for good. Here
  the fill is held by the Kraken REST fake instead of a kill.
- feed-drop drill: a reconnect while another series' fill was under way stretched a gap that was
  already due past the bar then open; its fill came back without that bar and the bar was lost.
- host-kill drill: the provider host was SIGKILLed and took longer to come back than the fill's
  five attempts, each of which failed at once ("the provider host is restarting"); the span was
  given up until the next engine start, and the running engine never filled it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
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
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.events import EventBus
from quasar_tui.engine.live import LiveSession, rest_backfill
from quasar_tui.engine.writer import Writer
from quasar_tui.providers.kraken import KrakenProvider
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sandbox.hosted import HostOptions
from quasar_tui.sdk import HttpClient, ProviderContext
from quasar_tui.store.database import Database

T0 = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)
SYMBOLS = ("BTC/USD", "ETH/USD")
GRACE = 3.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, minute: int, second: int) -> datetime:
        self.now = T0.replace(second=0) + timedelta(minutes=minute, seconds=second)
        return self.now


class HeldRest(KrakenRestFake):
    """The Kraken REST fake whose OHLC answers wait until `release` is set."""

    def __init__(self, market: KrakenMarket) -> None:
        super().__init__(market)
        self.release = asyncio.Event()
        self._answer_ohlc = self._ohlc
        self._ohlc = self._held_ohlc

    async def _held_ohlc(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return await self._answer_ohlc(request)


@pytest.fixture
async def feed() -> AsyncIterator[tuple[Clock, KrakenWSFake, HeldRest]]:
    clock = Clock()
    market = KrakenMarket(clock)
    ws, rest = KrakenWSFake(market), HeldRest(market)
    await ws.start()
    await rest.start()
    yield clock, ws, rest
    rest.release.set()
    await ws.stop()
    await rest.stop()


def bars_from(trades: list[Trade]) -> dict[tuple, tuple]:
    return bars_from_trades(trades, (Interval.M1,))


async def open_live_gaps(db: Database) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM gaps WHERE mode = 'live' AND resolved_at IS NULL"
    )


async def kraken_registry(
    db: Database, tmp_path: Path, ws: KrakenWSFake, rest: KrakenRestFake
) -> ProviderRegistry:
    """The bundled KRAKEN provider on the fakes, its assets, and live 1min subscriptions."""
    registry = ProviderRegistry(db, Keyring.load_or_create(tmp_path))
    await registry.ensure_bundled()
    await registry.set_preferences(
        "KRAKEN", {"ws_url": ws.url, "rest_url": rest.url, "channels": "trade"}
    )
    instance = await registry.load("KRAKEN")
    await AssetStore(db).refresh("KRAKEN", instance)
    await instance.aclose()
    await SubscriptionStore(db).add("KRAKEN", list(SYMBOLS), "1min", "live")
    return registry


def kraken_engine(
    db: Database,
    registry: ProviderRegistry,
    tmp_path: Path,
    clock: Clock,
    host_options: HostOptions | None = None,
) -> Engine:
    return Engine(
        db,
        registry,
        SubscriptionStore(db),
        data_dir=tmp_path,
        clock=clock,
        reconcile_every=3600.0,
        live_options={"grace": GRACE, "backoff": Backoff(0.02, 0.1)},
        host_options=host_options,
    )


async def test_span_still_to_fill_at_stop_is_filled_by_the_next_engine(
    db: Database, tmp_path: Path, feed: tuple[Clock, KrakenWSFake, HeldRest]
) -> None:
    clock, ws, rest = feed
    registry = await kraken_registry(db, tmp_path, ws, rest)

    def engine() -> Engine:
        return kraken_engine(db, registry, tmp_path, clock)

    first = engine()
    await first.start()
    for symbol in SYMBOLS:
        await ws.wait_subscribed(symbol)
    for minute in range(3):  # 10:00 is the bar joined mid-way: only REST history has it all
        clock.at(minute, 20)
        for n, symbol in enumerate(SYMBOLS):
            await ws.trade(symbol, 100.0 + minute + n, 1.0 + n, clock.now)
        await until(lambda: _stored_ticks(db, ws.delivered_trades), "ticks stored")
    clock.at(3, 10)  # 10:01 and 10:02 are due; the 10:00 fill waits for REST
    live = {
        k: v
        for k, v in bars_from([t for s in SYMBOLS for t in ws.market.trades[s]]).items()
        if k[2] > T0
    }
    await until(lambda: _has(db, live), "the live bars after the joined one")
    await first.stop()
    assert (SYMBOLS[0], "1min", T0.replace(second=0)) not in await stored_live_bars(db)
    assert await open_live_gaps(db) == len(SYMBOLS)

    rest.release.set()
    clock.at(4, 30)
    second = engine()
    await second.start()
    for symbol in SYMBOLS:
        await ws.wait_subscribed(symbol)
    clock.at(6, 0)  # the span from 10:00 to the bar the second engine joined has closed
    expected = bars_from([t for s in SYMBOLS for t in ws.market.trades[s]])
    try:
        await until(lambda: _equal(db, expected), "every bar, the joined one included")
        await until(lambda: _no_open_live_gaps(db), "the gap records resolved")
    finally:
        await second.stop()
    assert await stored_live_bars(db) == expected


async def _stored_ticks(db: Database, n: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM live_ticks") >= n


async def _has(db: Database, bars: dict[tuple, tuple]) -> bool:
    have = await stored_live_bars(db)
    return all(have.get(k) == v for k, v in bars.items())


async def _equal(db: Database, bars: dict[tuple, tuple]) -> bool:
    return await stored_live_bars(db) == bars


async def _no_open_live_gaps(db: Database) -> bool:
    return await open_live_gaps(db) == 0


async def test_reconnect_during_a_fill_does_not_stretch_a_due_gap_past_the_open_bar(
    db: Database, feed: tuple[Clock, KrakenWSFake, HeldRest]
) -> None:
    clock, ws, rest = feed
    rest.release.set()
    writer = Writer(db, EventBus(), flush_seconds=0.05)
    await writer.start()
    provider = KrakenProvider(
        ProviderContext(
            preferences={"ws_url": ws.url, "rest_url": rest.url, "channels": "trade"},
            http=HttpClient(rate_limit=(100, 1.0), retries=0),
        )
    )
    first_fill = asyncio.Event()
    fills: list[tuple[str, datetime, datetime]] = []

    async def backfill(symbol: str, interval: str, start: datetime, end: datetime) -> int:
        fills.append((symbol, start, end))
        if len(fills) == 1:
            await first_fill.wait()  # the other series' fill waits behind this one
        return await rest_backfill(provider, writer, "KRAKEN", symbol, interval, start, end)

    session = LiveSession(
        "KRAKEN",
        provider,
        writer,
        EventBus(),
        clock=clock,
        grace=GRACE,
        backoff=Backoff(0.02, 0.1),
        backfill=backfill,
    )
    await session.set_subscriptions({s: {Interval.M1} for s in SYMBOLS})
    task = asyncio.create_task(session.run())
    try:
        for symbol in SYMBOLS:
            await ws.wait_subscribed(symbol)
        clock.at(0, 20)  # inside the bar joined mid-way
        for symbol in SYMBOLS:
            await ws.trade(symbol, 10.0, 1.0, clock.now)
        await until(lambda: session.stats.ticks >= 2, "the trades read")
        clock.at(1, 10)  # the joined bars are due for filling; the first fill is held
        await until(lambda: len(fills) == 1, "the first fill under way")
        ws.refusing = True
        await ws.drop()
        clock.at(1, 20)  # made while the feed is cut: only REST history has them
        for symbol in SYMBOLS:
            await ws.trade(symbol, 11.0, 2.0, clock.now)
        ws.refusing = False
        for symbol in SYMBOLS:  # subscribed again mid-way through the 10:01 bar
            await ws.wait_subscribed(symbol)
        await until(lambda: session.stats.connects == 2, "the reconnect")
        first_fill.set()
        clock.at(3, 0)  # 10:01 has closed: its fill may run now, and only now
        expected = bars_from([t for s in SYMBOLS for t in ws.market.trades[s]])
        await until(lambda: _equal(db, expected), "both bars of both series")
    finally:
        await session.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await provider.aclose()
        await writer.stop()
    minute = T0.replace(second=0)
    assert all(end <= minute + timedelta(minutes=1) for _, start, end in fills if start == minute)


# The supervisor waits 6 to 12 real seconds before it starts a killed host again.
SLOW_RESTART = HostOptions(backoff_base=12.0, backoff_cap=12.0)


async def test_span_due_while_the_provider_host_restarts_is_filled_once_it_is_back(
    db: Database, tmp_path: Path, feed: tuple[Clock, KrakenWSFake, HeldRest]
) -> None:
    clock, ws, rest = feed
    rest.release.set()
    registry = await kraken_registry(db, tmp_path, ws, rest)
    engine = kraken_engine(db, registry, tmp_path, clock, SLOW_RESTART)
    await engine.start()
    try:
        for symbol in SYMBOLS:
            await ws.wait_subscribed(symbol)
        clock.at(0, 20)  # inside the bar joined mid-way: only REST history has all of it
        for symbol in SYMBOLS:
            await ws.trade(symbol, 10.0, 1.0, clock.now)
        await until(lambda: _stored_ticks(db, len(SYMBOLS)), "the trades stored")
        host = engine.stats()["providers"]["KRAKEN"]["host"]
        os.kill(host["pid"], signal.SIGKILL)
        await until(lambda: _host_state(engine) == "restarting", "the host restarting")
        # The joined bar's span comes due while no host runs, then the times of all of a
        # fill's retries pass; the bar timer looks for due fills ten times a real second.
        for minute, second in ((1, 10), (1, 15), (1, 25), (1, 45), (2, 30), (3, 40)):
            clock.at(minute, second)
            await asyncio.sleep(0.5)
        assert _host_state(engine) == "restarting"  # or the host was back for some retries
        await until(lambda: _host_state(engine) == "running", "the host started again")
        for symbol in SYMBOLS:
            await ws.wait_subscribed(symbol)
        clock.at(5, 0)
        expected = bars_from([t for s in SYMBOLS for t in ws.market.trades[s]])
        await until(lambda: _equal(db, expected), "the joined bars filled")
        await until(lambda: _no_open_live_gaps(db), "the gap records resolved")
    finally:
        await engine.stop()
    assert await stored_live_bars(db) == expected


def _host_state(engine: Engine) -> str:
    return engine.stats()["providers"]["KRAKEN"]["host"]["state"]
