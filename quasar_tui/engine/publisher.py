"""What a running engine tells consoles in other processes, through the database.

The engine side (`Publisher`) conflates ticks per symbol in memory and writes them a few times a
second in one statement, refreshes the `engine_status` heartbeat about once a second, and appends
errors and job runs to a bounded `engine_events` log. The reader side (`EngineMonitor`) is what
an attached console polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from quasar_tui.core.clock import utc_now
from quasar_tui.engine.events import QuoteEvent
from quasar_tui.engine.lock import EngineOwner, engine_running, owner_from
from quasar_tui.sdk.models import Tick
from quasar_tui.store.database import Database

log = logging.getLogger("quasar.engine.publisher")

EVENTS_KEPT = 2000
EVENT_BUFFER = 1000

_UPSERT_STATUS = """
    INSERT INTO engine_status (id, owner, pid, mode, started_at, heartbeat, stats)
    VALUES (1, $1, $2, $3, $4, now(), $5)
    ON CONFLICT (id) DO UPDATE
       SET owner = excluded.owner, pid = excluded.pid, mode = excluded.mode,
           started_at = excluded.started_at, heartbeat = excluded.heartbeat,
           stats = excluded.stats
"""
_DELETE_STATUS = "DELETE FROM engine_status WHERE id = 1 AND owner = $1 AND pid = $2"
_STATUS = """
    SELECT owner, pid, mode, started_at, heartbeat, stats FROM engine_status WHERE id = 1"""
_UPSERT_QUOTES = """
    INSERT INTO live_quotes (provider, symbol, ts, last, bid, ask, volume, open, ticks, updated_at)
    SELECT p, s, t, l, b, a, v, o, n, now()
      FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::float8[],
                  $6::float8[], $7::float8[], $8::float8[], $9::bigint[])
           AS q(p, s, t, l, b, a, v, o, n)
    ON CONFLICT (provider, symbol) DO UPDATE
       SET ts = excluded.ts, last = excluded.last, bid = excluded.bid, ask = excluded.ask,
           volume = excluded.volume, open = excluded.open, ticks = excluded.ticks,
           updated_at = excluded.updated_at
"""
_INSERT_EVENTS = """
    INSERT INTO engine_events (at, level, source, message)
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[])
"""
_TRIM_EVENTS = "DELETE FROM engine_events WHERE id <= (SELECT max(id) FROM engine_events) - $1"
_QUOTES_SINCE = """
    SELECT provider, symbol, ts, last, bid, ask, volume, open, ticks, updated_at
      FROM live_quotes WHERE updated_at > $1 ORDER BY provider, symbol
"""
_EVENTS_SINCE = """
    SELECT id, at, level, source, message FROM engine_events
     WHERE id > $1 ORDER BY id LIMIT $2
"""
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass
class PublishedQuote:
    """Latest known figures for one provider symbol; `open` is the first price this run saw.
    `change` numbers the engine's last update of it (in memory only, for a console in the
    engine's process)."""

    provider: str
    symbol: str
    ts: datetime
    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    volume: float | None = None
    open: float | None = None
    ticks: int = 0
    updated_at: datetime | None = None
    change: int = 0


@dataclass(frozen=True)
class EngineEventRecord:
    id: int
    at: datetime
    level: str
    source: str
    message: str


@dataclass(frozen=True)
class EngineStatus:
    """What an attached console shows in its header; `running` comes from the lock itself."""

    owner: EngineOwner | None
    running: bool
    stats: dict[str, Any]


class Publisher:
    """Throttled writes of engine state for other processes; a database outage only delays it."""

    def __init__(
        self,
        db: Database,
        owner: EngineOwner,
        stats: Callable[[], dict[str, Any]],
        *,
        quote_interval: float = 0.25,
        heartbeat_interval: float = 1.0,
    ) -> None:
        self._db = db
        self._owner = owner
        self._stats = stats
        self._quote_interval = quote_interval
        self._heartbeat_interval = heartbeat_interval
        self._quotes: dict[str, dict[str, PublishedQuote]] = {}  # provider -> symbol -> quote
        self._dirty: dict[int, PublishedQuote] = {}  # id -> quote changed since the last write
        self._changes = 0
        self._events: deque[tuple[datetime, str, str, str]] = deque(maxlen=EVENT_BUFFER)
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def note_ticks(self, provider: str, ticks: list[Tick]) -> None:
        """Trades a session read, in order: only the latest figures per symbol are kept."""
        quotes = self._quotes.get(provider) or self._quotes.setdefault(provider, {})
        quote: PublishedQuote | None = None
        for tick in ticks:
            if quote is None or quote.symbol != tick.symbol:
                quote = quotes.get(tick.symbol) or self._new_quote(provider, tick.symbol, tick.ts)
                self._changed(quote)
            if tick.ts > quote.ts:
                quote.ts = tick.ts
            quote.last = tick.price
            quote.volume = (quote.volume or 0.0) + tick.size
            if tick.bid is not None:
                quote.bid = tick.bid
            if tick.ask is not None:
                quote.ask = tick.ask
            if quote.open is None:
                quote.open = tick.price
            quote.ticks += 1

    def note_quote(self, event: QuoteEvent) -> None:
        update = event.quote
        quotes = self._quotes.get(event.provider, {})
        quote = quotes.get(update.symbol) or self._new_quote(
            event.provider, update.symbol, update.ts
        )
        self._changed(quote)
        if update.ts > quote.ts:
            quote.ts = update.ts
        for name in ("bid", "ask", "last", "volume"):
            value = getattr(update, name)
            if value is not None:
                setattr(quote, name, value)
        if quote.open is None and update.last is not None:
            quote.open = update.last

    def note_event(self, level: str, source: str, message: str) -> None:
        self._events.append((utc_now(), level, source, message))

    def quotes_changed(self, since: int) -> tuple[list[PublishedQuote], int]:
        """The quotes changed after change number `since` (0: all of them), and the number to
        pass next time: what a console in the engine's process shows. A `since` from before
        this publisher (an engine started again) reads all of them."""
        if since > self._changes:
            since = 0
        changed = [
            q for quotes in self._quotes.values() for q in quotes.values() if q.change > since
        ]
        return changed, self._changes

    def _new_quote(self, provider: str, symbol: str, ts: datetime) -> PublishedQuote:
        quote = PublishedQuote(provider, symbol, ts)
        self._quotes.setdefault(provider, {})[symbol] = quote
        return quote

    def _changed(self, quote: PublishedQuote) -> None:
        self._changes += 1
        quote.change = self._changes
        self._dirty[id(quote)] = quote

    async def start(self) -> None:
        await self.heartbeat()
        self._task = asyncio.create_task(self._run(), name="quasar-publisher")

    async def stop(self) -> None:
        """Write what is pending, then remove the status row so nobody sees a ghost engine."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
        await self._guard(
            self._db.execute(_DELETE_STATUS, self._owner.host, self._owner.pid), "status"
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self._heartbeat_interval
        while True:
            await asyncio.sleep(self._quote_interval)
            await self.flush_quotes()
            if loop.time() >= next_beat:
                next_beat = loop.time() + self._heartbeat_interval
                await self.heartbeat()
                await self.flush_events()

    async def flush(self) -> None:
        await self.flush_quotes()
        await self.flush_events()
        await self.heartbeat()

    async def heartbeat(self) -> None:
        o = self._owner
        await self._guard(
            self._db.execute(_UPSERT_STATUS, o.host, o.pid, o.mode, o.started_at, self._stats()),
            "status",
        )

    async def flush_quotes(self) -> None:
        if not self._dirty:
            return
        rows = sorted(self._dirty.values(), key=lambda q: (q.provider, q.symbol))
        self._dirty.clear()
        columns = (
            [q.provider for q in rows],
            [q.symbol for q in rows],
            [q.ts for q in rows],
            [q.last for q in rows],
            [q.bid for q in rows],
            [q.ask for q in rows],
            [q.volume for q in rows],
            [q.open for q in rows],
            [q.ticks for q in rows],
        )
        written = False
        try:
            written = await self._guard(self._db.execute(_UPSERT_QUOTES, *columns), "quotes")
        finally:  # failed, or cancelled mid-write by `stop`: the next (or final) flush retries
            if not written:
                self._dirty.update((id(q), q) for q in rows)

    async def flush_events(self) -> None:
        if not self._events:
            return
        batch = list(self._events)
        self._events.clear()
        at, level, source, message = (list(col) for col in zip(*batch, strict=True))

        async def write() -> None:
            async with self._db.pool.acquire() as conn, conn.transaction():
                await conn.execute(_INSERT_EVENTS, at, level, source, message)
                await conn.execute(_TRIM_EVENTS, EVENTS_KEPT)

        written = False
        try:
            written = await self._guard(write(), "events")
        finally:  # as for quotes: a write cancelled by `stop` rolled back and is retried
            if not written:
                self._events.extendleft(reversed(batch))

    async def _guard(self, op: Any, what: str) -> bool:
        """Run one write; on a database error log once per outage and report failure."""
        try:
            await op
        except _DB_ERRORS as exc:
            if not self._failing:
                log.warning("cannot publish engine %s (will retry): %s", what, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("publishing engine state again")
        self._failing = False
        return True


class EngineMonitor:
    """The attached console's view of an engine in another process: poll every ~0.5 s."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def status(self) -> EngineStatus:
        row = await self._db.fetchrow(_STATUS)
        running = await engine_running(self._db)
        if row is None:
            return EngineStatus(owner=None, running=running, stats={})
        return EngineStatus(owner=owner_from(row), running=running, stats=row["stats"] or {})

    async def quotes(self, since: datetime | None = None) -> list[PublishedQuote]:
        """Quotes updated after `since` (all of them when None); pass back the newest
        `updated_at` seen to get only changes next time."""
        rows = await self._db.fetch(_QUOTES_SINCE, since or datetime.min.replace(tzinfo=UTC))
        return [PublishedQuote(**dict(r)) for r in rows]

    async def events(self, since_id: int = 0, limit: int = 500) -> list[EngineEventRecord]:
        rows = await self._db.fetch(_EVENTS_SINCE, since_id, limit)
        return [EngineEventRecord(**dict(r)) for r in rows]
