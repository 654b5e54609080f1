"""The SIMULATED provider: deterministic, offline, and collected like any live feed."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from helpers import until

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.events import EventBus, TickEvent
from quasar_tui.engine.live import LiveSession
from quasar_tui.engine.writer import Writer
from quasar_tui.providers.simulated import SimulatedProvider
from quasar_tui.sdk import Bar, ProviderContext, Tick
from quasar_tui.store.database import Database

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WINDOW = (T0.timestamp(), T0.timestamp() + 600)


def simulated(clock=None, **prefs: object) -> SimulatedProvider:
    provider = SimulatedProvider(ProviderContext(preferences=prefs))
    if clock is not None:
        provider.clock = clock
    return provider


def bars_from(trades: list[Tick], interval: Interval) -> list[Bar]:
    """The reference aggregation of a list of trades."""
    groups: dict[datetime, list[Tick]] = {}
    for t in trades:
        groups.setdefault(interval.floor(t.ts), []).append(t)
    return [
        Bar(
            ts=ts,
            open=g[0].price,
            high=max(t.price for t in g),
            low=min(t.price for t in g),
            close=g[-1].price,
            volume=sum(t.size for t in g),
            symbol=g[0].symbol,
            trades=len(g),
            interval=interval,
        )
        for ts, g in sorted(groups.items())
    ]


def test_the_same_seed_gives_the_same_market() -> None:
    first = simulated(seed=7).trades("SIM/BTC", *WINDOW)
    again = simulated(seed=7).trades("SIM/BTC", *WINDOW)
    other = simulated(seed=8).trades("SIM/BTC", *WINDOW)
    assert first == again
    assert [t.price for t in first] != [t.price for t in other]
    assert len(first) == 20 * 600  # the default 20 trades a second
    assert [t.trade_id for t in first] == list(
        range(first[0].trade_id, first[0].trade_id + len(first))
    )
    assert all(
        WINDOW[0] <= t.ts.timestamp() < WINDOW[1] and t.price > 0 and t.size > 0 for t in first
    )
    # evaluated in pieces, in any order, the walk is the same walk
    middle = WINDOW[0] + 123.45
    assert (
        simulated(seed=7).trades("SIM/BTC", middle, WINDOW[1])[:5]
        == [t for t in first if t.ts.timestamp() >= middle][:5]
    )


def test_symbols_are_configurable_up_to_benchmark_sizes() -> None:
    default = asyncio.run(simulated().fetch_available_symbols())
    assert [s.symbol for s in default][:3] == ["SIM/BTC", "SIM/ETH", "SIM/SOL"]
    many = asyncio.run(simulated(symbol_count=500).fetch_available_symbols())
    assert len(many) == 500 and many[0].symbol == "SIM0001" and many[-1].symbol == "SIM0500"


async def test_history_lies_on_the_live_path() -> None:
    provider = simulated(clock=lambda: T0.timestamp() + 7200, ticks_per_second=0.25)
    start, end = T0, T0 + timedelta(minutes=30)
    bars = [b async for b in provider.get_history("ACME", start, end, Interval.M1)]
    trades = provider.trades("ACME", start.timestamp(), end.timestamp())
    assert bars == bars_from(trades, Interval.M1)  # 15 trades a bar: exact
    assert bars == [b async for b in provider.get_history("ACME", start, end, Interval.M1)]

    dense = simulated(clock=lambda: T0.timestamp() + 7200)
    fifteen = [
        b async for b in dense.get_history("ACME", T0, T0 + timedelta(minutes=15), Interval.M15)
    ]
    exact = bars_from(dense.trades("ACME", T0.timestamp(), T0.timestamp() + 900), Interval.M15)[0]
    (bar,) = fifteen
    assert (bar.open, bar.close, bar.trades) == (exact.open, exact.close, exact.trades)
    assert exact.low <= bar.low <= bar.high <= exact.high
    future = [
        b
        async for b in dense.get_history(
            "ACME", T0 + timedelta(hours=2), T0 + timedelta(hours=3), Interval.M1
        )
    ]
    assert future == []  # bars that have not closed yet do not exist


async def test_live_collection_runs_offline(db: Database) -> None:
    started = time.monotonic()

    def clock() -> float:  # market time runs 60 times faster than the wall clock
        return T0.timestamp() + (time.monotonic() - started) * 60

    provider = simulated(clock=clock, ticks_per_second=0.25)
    bus = EventBus()
    writer = Writer(db, bus, flush_seconds=0.05)
    await writer.start()
    received = bus.subscribe(maxsize=100_000, kinds=(TickEvent,))
    latest: dict[str, datetime] = {}

    def delivered() -> datetime:
        """The session's clock: the time up to which the feed has delivered every symbol's
        trades (each symbol's arrive in order). A bar then closes only once all its trades
        arrived, however far a busy machine lets the feed fall behind market time."""
        for event in received.drain():
            tick = event.tick
            latest[tick.symbol] = max(tick.ts, latest.get(tick.symbol, tick.ts))
        return min(latest.values()) if len(latest) == 2 else T0

    session = LiveSession("SIMULATED", provider, writer, bus, grace=30.0, clock=delivered)
    await session.set_subscriptions(
        {"SIM/BTC": {Interval.M1}, "ACME": {Interval.M1}, "NOPE": {Interval.M1}}
    )
    task = asyncio.create_task(session.run())
    try:
        await until(lambda: _bars_at_least(db, 4), "four bars")
    finally:
        await session.stop()
        await writer.stop()
    assert task.done()
    assert session.refused == {"NOPE": "unknown symbol NOPE"}

    rows = await db.fetch(
        "SELECT symbol, ts, open, high, low, close, volume, trades "
        "FROM live_data ORDER BY symbol, ts"
    )
    assert len(rows) >= 4
    for symbol in ("ACME", "SIM/BTC"):
        stored = [r for r in rows if r["symbol"] == symbol]
        first, last = stored[0]["ts"], stored[-1]["ts"] + timedelta(minutes=1)
        assert first == T0  # the bar joined mid-way came from history, not partial ticks
        expected = bars_from(
            provider.trades(symbol, first.timestamp(), last.timestamp()), Interval.M1
        )
        assert [
            (r["ts"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["trades"])
            for r in stored
        ] == [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.trades) for b in expected]
    ticks = await db.fetchval("SELECT count(*) FROM live_ticks WHERE provider = 'SIMULATED'")
    assert ticks > 0


async def _bars_at_least(db: Database, n: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM live_data") >= n
