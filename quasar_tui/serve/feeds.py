"""Where live data comes from: the database (standalone `quasar serve`) or the engine's bus.

Standalone, written bars arrive as NOTIFYs on `store.announce.CHANNEL` and ticks as the
conflated `live_quotes` rows the engine publishes for attached consoles. Inside the engine's
process, both come straight from its event bus. Either way, a written batch drops the cached
answers of its series and its bars go to the stream clients that follow them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg
import msgspec

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.events import BarsWritten, EventBus, TickEvent
from quasar_tui.engine.publisher import EngineMonitor
from quasar_tui.registry.apikeys import CHANGES_CHANNEL
from quasar_tui.serve.cache import AnswerCache
from quasar_tui.serve.stream import TICKS_PER_SECOND, Hub
from quasar_tui.store import announce
from quasar_tui.store.announce import Written
from quasar_tui.store.database import Database
from quasar_tui.store.read import Reader

log = logging.getLogger("quasar.serve")

PENDING_BATCHES = 10_000
# A history backfill writes thousands of bars at once; a dashboard wants the newest, not a flood
# that would fill its queue and drop it.
STREAMED_PER_BATCH = 10
_RECONNECT_MAX = 30.0
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class WrittenBars:
    """Handles announced batches one at a time from a bounded queue.

    When the queue overflows, the announcements lost are unknown: every cached answer goes.
    """

    def __init__(self, reader: Reader, cache: AnswerCache, hub: Hub) -> None:
        self.reader = reader
        self.cache = cache
        self.hub = hub
        self._queue: asyncio.Queue[Written] = asyncio.Queue(PENDING_BATCHES)

    def offer(self, written: Written) -> None:
        key = f"{written.provider}:{written.symbol}"
        self.cache.invalidate(key)  # at once: the next request must not get the old answer
        try:
            self._queue.put_nowait(written)
        except asyncio.QueueFull:
            log.warning("too many written batches waiting; bars of %s not streamed", key)

    async def run(self) -> None:
        while True:
            written = await self._queue.get()
            try:
                await self._stream(written)
            except _DB_ERRORS as exc:
                log.warning("cannot read the bars just written to stream them: %s", exc)

    async def _stream(self, written: Written) -> None:
        key = f"{written.provider}:{written.symbol}"
        if not self.hub.wants(key, "bars"):
            return
        interval = Interval(written.interval)
        read = await self.reader.bars(
            key,
            interval,
            written.first_ts,
            interval.next_start(written.last_ts),
            limit=max(1, min(written.count, STREAMED_PER_BATCH)),
        )
        for bar in read.bars:
            self.hub.note_bar(key, interval.value, bar)


class DatabaseFeed:
    """Standalone: LISTEN for written bars and key changes; poll published quotes for ticks.

    With `follow_data` False (the engine's bus brings the data) it hears key changes only.
    """

    def __init__(
        self,
        db: Database,
        written: WrittenBars,
        hub: Hub,
        keys_changed: Callable[[], None],
        *,
        poll_seconds: float = 1.0 / TICKS_PER_SECOND,
        follow_data: bool = True,
    ) -> None:
        self.db = db
        self.written = written
        self.hub = hub
        self.keys_changed = keys_changed
        self.poll_seconds = poll_seconds
        self.follow_data = follow_data
        self.listening = asyncio.Event()

    async def run(self) -> None:
        if self.follow_data:
            await asyncio.gather(self._listen(), self._quotes())
        else:
            await self._listen()

    def _on_bars(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            written = announce.decode(payload)
        except msgspec.DecodeError as exc:
            log.warning("ignoring a malformed bars announcement: %s", exc)
            return
        self.written.offer(written)

    def _on_keys(self, *_args: object) -> None:
        self.keys_changed()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            lost = asyncio.Event()
            try:
                conn = await self.db.connect()
            except _DB_ERRORS as exc:
                log.warning("cannot listen for written bars (retrying in %.0fs): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX)
                continue
            try:
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                if self.follow_data:
                    await conn.add_listener(announce.CHANNEL, self._on_bars)
                    # What was written while nobody listened is unknown: start clean.
                    self.written.cache.clear()
                await conn.add_listener(CHANGES_CHANNEL, self._on_keys)
                self.keys_changed()
                self.listening.set()
                delay = 0.5
                await lost.wait()
                log.warning("lost the database connection that listens for written bars")
            except _DB_ERRORS as exc:
                log.warning("listening for written bars failed: %s", exc)
            finally:
                self.listening.clear()
                conn.terminate()

    async def _quotes(self) -> None:
        monitor = EngineMonitor(self.db)
        since: datetime | None = None
        while True:
            await asyncio.sleep(self.poll_seconds)
            if not self.hub.wants_any("ticks"):
                continue
            try:
                quotes = await monitor.quotes(since)
            except _DB_ERRORS as exc:
                log.warning("cannot read published quotes: %s", exc)
                continue
            for q in quotes:
                self.hub.note_tick(f"{q.provider}:{q.symbol}", q.ts, q.last, q.bid, q.ask)
                if q.updated_at is not None and (since is None or q.updated_at > since):
                    since = q.updated_at


class BusFeed:
    """In the engine's process: ticks and written bars from its event bus."""

    def __init__(self, bus: EventBus, written: WrittenBars, hub: Hub) -> None:
        self.bus = bus
        self.written = written
        self.hub = hub

    async def run(self) -> None:
        subscription = self.bus.subscribe(maxsize=PENDING_BATCHES, kinds=(TickEvent, BarsWritten))
        try:
            async for event in subscription:
                if isinstance(event, TickEvent):
                    tick = event.tick
                    key = f"{event.provider}:{tick.symbol}"
                    self.hub.note_tick(key, tick.ts, tick.price, tick.bid, tick.ask)
                elif isinstance(event, BarsWritten) and event.interval is not None:
                    self.written.offer(
                        Written(
                            event.table,
                            event.provider,
                            event.symbol,
                            event.interval,
                            event.count,
                            event.last_ts,
                        )
                    )
        finally:
            self.bus.unsubscribe(subscription)
