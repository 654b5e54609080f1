"""The engine against a real PostgreSQL: the lock, NOTIFY-driven reconciliation, historical
jobs, live sessions from the simulated provider, failure isolation, and what it publishes for
consoles in other processes."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import refresh_assets, until, with_simulated
from registry_rows import add_provider

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.events import ProviderState, TickEvent
from quasar_tui.engine.lock import EngineLockedError
from quasar_tui.engine.publisher import EngineMonitor
from quasar_tui.engine.scheduler import BarCloseTrigger
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.subscriptions import SubscriptionRecord, SubscriptionStore
from quasar_tui.store.database import Database

FAILING_PROVIDER = """
from quasar_tui.sdk import HistoricalDataProvider, SymbolInfo


class Boom(HistoricalDataProvider):
    name = "BOOM"

    async def fetch_available_symbols(self):
        return [SymbolInfo(symbol="X")]

    async def get_history(self, sym, start, end, interval):
        raise RuntimeError("upstream exploded")
        yield
"""


@pytest.fixture
async def registry(registry: ProviderRegistry) -> ProviderRegistry:
    return await with_simulated(registry)


@pytest.fixture
async def engines(
    db: Database, registry: ProviderRegistry, tmp_path: Path
) -> AsyncIterator[Callable[..., Engine]]:
    """Engines on the test database that only NOTIFY wakes (no periodic reconcile)."""
    made: list[Engine] = []

    def make(mode: str = "console", **options: Any) -> Engine:
        options.setdefault("reconcile_every", 3600.0)
        engine = Engine(
            db, registry, SubscriptionStore(db), data_dir=tmp_path, mode=mode, **options
        )
        made.append(engine)
        return engine

    yield make
    for engine in made:
        await engine.stop()


async def state_of(db: Database, sub: SubscriptionRecord) -> SubscriptionRecord:
    return await SubscriptionStore(db).get(sub.id)


async def test_second_engine_cannot_start_and_names_the_owner(
    db: Database, engines: Callable[..., Engine]
) -> None:
    first = engines(mode="daemon")
    await first.start()
    second = engines()
    with pytest.raises(EngineLockedError) as caught:
        await second.start()

    owner = caught.value.owner
    assert owner is not None
    assert (owner.host, owner.pid, owner.mode) == (socket.gethostname(), os.getpid(), "daemon")
    assert f"daemon on {owner.host}:{owner.pid}" in str(caught.value)
    status = await EngineMonitor(db).status()
    assert status.running and status.owner == owner

    await first.stop()
    status = await EngineMonitor(db).status()
    assert not status.running and status.owner is None
    await second.start()
    status = await EngineMonitor(db).status()
    assert status.running and status.owner is not None and status.owner.mode == "console"


async def test_new_live_subscription_streams_via_notify_and_pause_stops_it(
    db: Database, engines: Callable[..., Engine]
) -> None:
    engine = engines()
    await engine.start()
    ticks = engine.bus.subscribe(maxsize=10_000, kinds=(TickEvent,))
    store = SubscriptionStore(db)

    [sub] = await store.add("SIMULATED", ["SIM/BTC"], "1min", "live")

    first = await until(lambda: _next_tick(ticks), "a tick from the new subscription")
    assert (first.provider, first.tick.symbol) == ("SIMULATED", "SIM/BTC")
    await until(lambda: _state_is(db, sub, "running"), "state running")
    monitor = EngineMonitor(db)
    quotes = await until(monitor.quotes, "a published quote")
    assert [(q.provider, q.symbol) for q in quotes] == [("SIMULATED", "SIM/BTC")]
    assert quotes[0].ticks > 0 and quotes[0].last is not None
    counters = engine.stats()["live_counters"]["SIMULATED"]
    assert counters["connects"] == 1 and counters["ticks"] > 0

    await store.set_enabled([sub.id], False)

    await until(lambda: _state_is(db, sub, "paused"), "state paused")
    assert engine.stats()["live_sessions"] == {}
    ticks.drain()
    await asyncio.sleep(0.5)
    assert ticks.drain() == []


async def _next_tick(subscription: Any) -> TickEvent | None:
    events = subscription.drain()
    return events[0] if events else None


async def _state_is(db: Database, sub: SubscriptionRecord, state: str) -> bool:
    return (await state_of(db, sub)).state == state


async def test_historical_subscription_collects_at_once_and_again_on_request(
    db: Database, engines: Callable[..., Engine]
) -> None:
    now = datetime.now(UTC)  # the engine's clock stands still: no hour may end mid-test
    engine = engines(clock=lambda: now)
    await engine.start()
    store = SubscriptionStore(db)

    [sub] = await store.add("SIMULATED", ["SIM/ETH"], "1h", "historical", lookback_days=2)

    await until(lambda: _state_is(db, sub, "ok"), "first historical run ok")
    stamps = [
        r["ts"]
        for r in await db.fetch(
            "SELECT ts FROM historical_data WHERE provider = 'SIMULATED' AND symbol = 'SIM/ETH' "
            "AND interval = '1h' ORDER BY ts"
        )
    ]
    assert stamps == Interval.H1.starts(stamps[0], Interval.H1.floor(now))  # no hole
    assert stamps[0] <= now - timedelta(days=2) + timedelta(hours=1)
    runs = await _runs(db, sub)

    await db.execute("SELECT pg_notify('quasar_changes', $1)", f"backfill:{sub.id}")

    await until(lambda: _more_runs(db, sub, runs), "a second run after the backfill request")


async def _runs(db: Database, sub: SubscriptionRecord) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM collection_runs WHERE subscription_id = $1 AND finished_at IS "
        "NOT NULL",
        sub.id,
    )


async def _more_runs(db: Database, sub: SubscriptionRecord, before: int) -> bool:
    return await _runs(db, sub) > before


async def test_failing_provider_does_not_stop_the_others(
    db: Database, registry: ProviderRegistry, engines: Callable[..., Engine], tmp_path: Path
) -> None:
    source = tmp_path / "boom.py"
    source.write_text(FAILING_PROVIDER)
    await registry.add(source)
    await refresh_assets(registry, "BOOM")
    await add_provider(db, "BROKEN", "historical", assets=["Y"])  # its code does not load
    store = SubscriptionStore(db)
    [boom] = await store.add("BOOM", ["X"], "1d", "historical", lookback_days=5)
    [broken] = await store.add("BROKEN", ["Y"], "1d", "historical", lookback_days=5)
    [good] = await store.add("SIMULATED", ["SIM/SOL"], "1h", "historical", lookback_days=1)

    engine = engines()
    await engine.start()

    await until(lambda: _state_is(db, good, "ok"), "the healthy provider's run")
    assert (
        await db.fetchval("SELECT count(*) FROM historical_data WHERE provider = 'SIMULATED'") >= 23
    )
    failed = await until(lambda: _errored(db, boom), "the failing provider's error")
    assert "upstream exploded" in failed.last_error
    broken_now = await until(lambda: _errored(db, broken), "the broken provider's error")
    assert "failed to load" in broken_now.last_error
    record = await registry.get("BROKEN")
    assert record.status == "error" and record.status_detail
    assert "\n" not in record.status_detail

    async def boom_published() -> bool:
        events = await _error_events(db)
        return any("BOOM" in e.source or "upstream exploded" in e.message for e in events)

    await until(boom_published, "the failing provider's error published for consoles")
    assert (await EngineMonitor(db).status()).running


async def _errored(db: Database, sub: SubscriptionRecord) -> SubscriptionRecord | None:
    now = await state_of(db, sub)
    return now if now.state == "error" and now.last_error else None


async def _error_events(db: Database) -> list[Any]:
    return [e for e in await EngineMonitor(db).events() if e.level == "error"]


async def test_changed_preferences_reload_the_provider(
    db: Database, registry: ProviderRegistry, engines: Callable[..., Engine]
) -> None:
    engine = engines()
    await engine.start()
    states = engine.bus.subscribe(maxsize=1000, kinds=(ProviderState,))
    await SubscriptionStore(db).add("SIMULATED", ["ACME"], "1min", "live")
    await until(lambda: _seen_state(states, "connected"), "first connection")

    await registry.set_preferences("SIMULATED", {"ticks_per_second": "5"})

    await until(lambda: _seen_state(states, "connected"), "a new connection with the new code")


async def _seen_state(subscription: Any, state: str) -> bool:
    return any(e.state == state for e in subscription.drain())


async def test_engine_stop_flushes_and_removes_its_published_status(
    db: Database, engines: Callable[..., Engine]
) -> None:
    engine = engines()
    await engine.start()
    await SubscriptionStore(db).add("SIMULATED", ["GLOBEX"], "1min", "live")
    await until(lambda: _ticks(db), "ticks stored")

    await engine.stop()

    served = await engine_ticks_seen(db)
    assert served == await db.fetchval("SELECT count(*) FROM live_ticks")
    status = await EngineMonitor(db).status()
    assert status.owner is None and not status.running


async def _ticks(db: Database) -> int:
    return await db.fetchval("SELECT count(*) FROM live_ticks")


async def engine_ticks_seen(db: Database) -> int:
    """Ticks the engine published to consoles: the conflated count per symbol."""
    return sum(q.ticks for q in await EngineMonitor(db).quotes())


@pytest.mark.parametrize(
    ("interval", "after", "expected"),
    [
        (
            Interval.M5,
            datetime(2026, 3, 2, 12, 3, tzinfo=UTC),
            datetime(2026, 3, 2, 12, 5, 10, tzinfo=UTC),
        ),
        (
            Interval.H4,
            datetime(2026, 3, 2, 12, 3, tzinfo=UTC),
            datetime(2026, 3, 2, 16, 0, 10, tzinfo=UTC),
        ),
        (
            Interval.D1,
            datetime(2026, 3, 2, 12, 3, tzinfo=UTC),
            datetime(2026, 3, 3, 0, 0, 10, tzinfo=UTC),
        ),
        (
            Interval.W1,
            datetime(2026, 3, 4, 12, 3, tzinfo=UTC),  # a Wednesday
            datetime(2026, 3, 9, 0, 0, 10, tzinfo=UTC),
        ),  # next Monday
        (
            Interval.MO1,
            datetime(2026, 3, 4, 12, 3, tzinfo=UTC),
            datetime(2026, 4, 1, 0, 0, 10, tzinfo=UTC),
        ),
    ],
)
def test_jobs_fire_just_after_each_bar_closes(
    interval: Interval, after: datetime, expected: datetime
) -> None:
    trigger = BarCloseTrigger(interval, delay=10)
    assert trigger.get_next_fire_time(None, after) == expected
    # after an immediate first run (a new job), the next run is still on the grid
    assert trigger.get_next_fire_time(after, after) == expected
    assert trigger.get_next_fire_time(expected, expected) == interval.next_start(
        expected
    ) + timedelta(seconds=10)
