"""Backfill progress against a slow provider: the share of the planned range, rows per second,
the time left and the rate budget move as chunks land, and reach `quasar status --json`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
from fakes.eodhd import TOKEN, FakeEodhd
from helpers import until
from historical_rig import rig, subscribe

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.lock import EngineLock, EngineOwner
from quasar_tui.engine.progress import BackfillProgress, Backfills
from quasar_tui.engine.publisher import Publisher
from quasar_tui.sdk import Bar
from quasar_tui.sdk.http import HttpClient
from quasar_tui.sdk.models import RateBudget
from quasar_tui.store.database import Database

NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)


class Slow:
    """Serves ten-day chunks of daily bars, each only when the test lets it through."""

    MAX_RANGE = {Interval.D1: timedelta(days=10)}
    RATE = (5, 60.0)

    def __init__(self) -> None:
        self.gate: asyncio.Queue[None] = asyncio.Queue()
        self.asked: list[tuple[datetime, datetime]] = []

    def rate_budget(self) -> RateBudget:
        return RateBudget(*self.RATE, left=self.RATE[0] - len(self.asked))

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        await self.gate.get()
        self.asked.append((start, end))
        for ts in interval.starts(start, end):
            yield Bar(ts, 1.0, 2.0, 0.5, 1.5, 10.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_progress_moves_as_chunks_land_and_reaches_status(db: Database, run_quasar) -> None:
    sub = await subscribe(db, "SLOW", "X", "1d", 30)
    clock = FakeClock()
    backfills = Backfills(clock)
    slow = Slow()
    lock = EngineLock(db)
    await lock.acquire()
    async with rig(db) as r:
        run = asyncio.create_task(r.run(slow, sub, NOW, backfills=backfills))
        (start,) = await until(backfills.snapshot, "the backfill to begin")
        assert (start.done, start.rows, start.rows_per_second, start.eta_seconds) == (
            0.0,
            0,
            None,
            None,
        )

        slow.gate.put_nowait(None)
        clock.now = 10.0
        (first,) = await until(
            lambda: [p for p in backfills.snapshot() if p.rows > 0], "the first chunk"
        )
        planned = 30  # days: three chunks of ten
        chunk = slow.asked[0]
        days = (chunk[1] - chunk[0]).days
        assert first.rows == days and first.done == round(days / planned, 4)
        assert first.rows_per_second == days / 10.0
        assert first.eta_seconds is not None and round(first.eta_seconds, 6) == 20.0  # 2 chunks
        assert first.budget == RateBudget(5, 60.0, 4)
        assert "rate 4/5 per 60s" in first.summary() and "ETA" in first.summary()

        # What an engine publishes with its stats, `quasar status --json` shows per series.
        owner = EngineOwner("host", 1, "daemon", datetime.now(UTC), datetime.now(UTC))
        publisher = Publisher(
            db,
            owner,
            lambda: {"backfills": msgspec.to_builtins(backfills.snapshot())},
        )
        await publisher.heartbeat()
        shown = json.loads(run_quasar("status", "--json").stdout)
        (row,) = shown["subscriptions"]
        assert msgspec.convert(row["backfill"], BackfillProgress) == first
        table = run_quasar("status").stdout
        assert f"{first.done:.0%}" in table and "rate 4/5 per 60s" in table

        slow.gate.put_nowait(None)
        slow.gate.put_nowait(None)
        done = await run
    await lock.release()
    assert done.status == "ok" and backfills.snapshot() == []


async def test_the_http_client_counts_its_rate_budget() -> None:
    clock = FakeClock()
    http = HttpClient(rate_limit=(5, 60.0), clock=clock)
    async with FakeEodhd() as fake:
        try:
            for _ in range(3):
                await http.get(f"{fake.base_url}/exchange-symbol-list/US", {"api_token": TOKEN})
            assert http.budget() == RateBudget(5, 60.0, 2)
            clock.now = 61.0  # a period later, the calls no longer count
            assert http.budget() == RateBudget(5, 60.0, 5)
        finally:
            await http.aclose()


class OneLongChunk(Slow):
    """All of a long lookback in one chunk, paused after its first 600 bars."""

    MAX_RANGE: dict[Interval, timedelta] = {}

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        self.asked.append((start, end))
        for i, ts in enumerate(interval.starts(start, end)):
            if i == 600:
                await self.gate.get()
            yield Bar(ts, 1.0, 2.0, 0.5, 1.5, 10.0)


async def test_progress_moves_within_a_long_chunk(db: Database) -> None:
    sub = await subscribe(db, "SLOW", "X", "1d", 1200)
    backfills = Backfills(FakeClock())
    slow = OneLongChunk()
    async with rig(db) as r:
        run = asyncio.create_task(r.run(slow, sub, NOW, backfills=backfills))
        (midway,) = await until(
            lambda: [p for p in backfills.snapshot() if p.rows], "progress within the chunk"
        )
        (start, end) = slow.asked[0]
        assert midway.rows == 600  # counted every 100 bars, before any reached the writer
        assert midway.done == round(600 / (end - start).days, 4)
        slow.gate.put_nowait(None)
        assert (await run).rows == (end - start).days
