"""What historical-collection tests share: a running writer and bus, subscriptions as the
engine sees them, and the stored bars read back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from quasar_tui.engine.events import EventBus, JobRun
from quasar_tui.engine.historical import run_historical
from quasar_tui.engine.writer import Writer
from quasar_tui.sdk import HttpClient, ProviderContext
from quasar_tui.store.database import Database


@dataclass(frozen=True)
class Sub:
    id: int
    provider: str
    symbol: str
    interval: str
    lookback_days: int


def context(
    secrets: dict[str, str], base_url: str, retries: int = 3, **preferences: object
) -> ProviderContext:
    """A provider context pointing at a fake, with test-sized backoffs and no rate limit."""
    http = HttpClient(
        rate_limit=(10_000, 1.0), retries=retries, base_backoff=0.01, max_backoff=0.05, timeout=5.0
    )
    return ProviderContext(secrets, {"base_url": base_url, **preferences}, http)


async def subscribe(
    db: Database, provider: str, symbol: str, interval: str, lookback_days: int
) -> Sub:
    """The registry rows a historical subscription needs (provider, asset, subscription)."""
    await db.execute(
        """INSERT INTO providers (name, kind, class_name, source, sha256)
           VALUES ($1, 'historical', 'Test', '', md5($1)) ON CONFLICT DO NOTHING""",
        provider,
    )
    await db.execute(
        "INSERT INTO assets (provider, symbol) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        provider,
        symbol,
    )
    sub_id = await db.fetchval(
        """INSERT INTO subscriptions (provider, symbol, interval, mode, lookback_days)
           VALUES ($1, $2, $3, 'historical', $4) RETURNING id""",
        provider,
        symbol,
        interval,
        lookback_days,
    )
    return Sub(sub_id, provider, symbol, interval, lookback_days)


async def stored(db: Database, sub: Sub) -> list[tuple]:
    rows = await db.fetch(
        """SELECT ts, open, high, low, close, volume FROM historical_data
            WHERE provider = $1 AND symbol = $2 AND interval = $3 ORDER BY ts""",
        sub.provider,
        sub.symbol,
        sub.interval,
    )
    return [tuple(r) for r in rows]


async def gaps(db: Database, sub: Sub) -> list[tuple]:
    rows = await db.fetch(
        """SELECT start_ts, end_ts, reason, resolution FROM gaps
            WHERE provider = $1 AND symbol = $2 AND interval = $3 ORDER BY start_ts, id""",
        sub.provider,
        sub.symbol,
        sub.interval,
    )
    return [tuple(r) for r in rows]


@dataclass
class Rig:
    db: Database
    writer: Writer
    bus: EventBus

    async def run(self, provider: object, sub: Sub, now: datetime, **kwargs: object) -> JobRun:
        return await run_historical(
            self.db, self.writer, self.bus, provider, sub, now=now, **kwargs
        )  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def rig(db: Database) -> AsyncIterator[Rig]:
    bus = EventBus()
    writer = Writer(db, bus, flush_seconds=0.05)
    await writer.start()
    try:
        yield Rig(db, writer, bus)
    finally:
        await writer.stop(grace=30)
