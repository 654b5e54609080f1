"""Typed engine events and the in-process bus that carries them to consoles.

Publishing never blocks and never raises: each subscriber has a bounded queue that drops its
oldest event when full and counts the drops, so a slow console can never stall the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Literal

import msgspec

from quasar_tui.core.errors import describe_error as describe_error

log = logging.getLogger("quasar.engine.events")


def _now() -> datetime:
    return datetime.now(UTC)


class TickEvent(msgspec.Struct, frozen=True, gc=False):
    provider: str
    symbol: str
    ts: datetime
    price: float
    size: float = 0.0
    bid: float | None = None
    ask: float | None = None


class QuoteEvent(msgspec.Struct, frozen=True, gc=False):
    provider: str
    symbol: str
    ts: datetime
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    volume: float | None = None
    change_pct: float | None = None


class BarsWritten(msgspec.Struct, frozen=True, gc=False):
    """Rows of one series committed by the writer (`interval` is None for ticks)."""

    table: str
    provider: str
    symbol: str
    interval: str | None
    count: int
    last_ts: datetime


class JobRun(msgspec.Struct, frozen=True):
    provider: str
    symbol: str
    interval: str
    status: Literal["ok", "partial", "failed"]
    rows: int
    started_at: datetime
    finished_at: datetime
    error: str | None = None


class ProviderState(msgspec.Struct, frozen=True):
    provider: str
    state: Literal["connecting", "connected", "disconnected", "error", "idle"]
    detail: str | None = None


class EngineError(msgspec.Struct, frozen=True):
    source: str
    message: str
    at: datetime = msgspec.field(default_factory=_now)


class WriterStats(msgspec.Struct, frozen=True):
    """One table's writer: rows waiting, how old the oldest is, throughput, rows held in retry."""

    table: str
    queue_depth: int
    queue_capacity: int
    lag_seconds: float
    rows_per_second: float
    pending_retry: int


Event = TickEvent | QuoteEvent | BarsWritten | JobRun | ProviderState | EngineError | WriterStats


class Subscription:
    """One consumer's view of the bus: an async iterator over a bounded drop-oldest queue."""

    def __init__(self, maxsize: int, kinds: tuple[type, ...] | None) -> None:
        if maxsize < 1:
            raise ValueError("a subscription needs room for at least one event")
        self.kinds = kinds
        self.dropped = 0
        self._queue: deque[Event] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    def offer(self, event: Event) -> None:
        """Queue an event the subscription wants; the oldest one goes when full."""
        if self._closed or (self.kinds is not None and not isinstance(event, self.kinds)):
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    def drain(self) -> list[Event]:
        """Everything queued now, without waiting (a console repainting a few times a second)."""
        events = list(self._queue)
        self._queue.clear()
        return events

    def close(self) -> None:
        """End the iteration once the queued events are consumed."""
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


class EventBus:
    """Fan-out of engine events to any number of subscriptions.

    Publish and consume from the engine's event loop; `publish` is synchronous and cheap.
    """

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def publish(self, event: Event) -> None:
        for subscription in self._subscriptions:
            try:
                subscription.offer(event)
            except Exception:
                log.exception(
                    "event subscriber failed; event %s not delivered to it", type(event).__name__
                )

    def subscribe(self, maxsize: int = 1000, kinds: tuple[type, ...] | None = None) -> Subscription:
        subscription = Subscription(maxsize, kinds)
        self._subscriptions = [*self._subscriptions, subscription]
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        self._subscriptions = [s for s in self._subscriptions if s is not subscription]
