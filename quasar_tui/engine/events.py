"""Typed engine events and the in-process bus that carries them to consoles.

Publishing never blocks and never raises: each subscriber has a bounded queue that drops its
oldest event when full and counts the drops, so a slow console can never stall the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import msgspec

from quasar_tui.core.clock import utc_now
from quasar_tui.sdk.models import Quote, Tick

log = logging.getLogger("quasar.engine.events")


class TickEvent(msgspec.Struct, frozen=True, gc=False):
    """A trade a live session accepted (not a re-delivered one), as its provider parsed it."""

    provider: str
    tick: Tick


class TradesRead(msgspec.Struct, frozen=True, gc=False):
    """The new trades a live session read in one burst of messages (until the event loop
    turned), in order: one event per burst, not per trade or message, for what only needs
    the latest figures (the engine's published quotes)."""

    provider: str
    ticks: list[Tick]


class QuoteEvent(msgspec.Struct, frozen=True, gc=False):
    """A ticker update from a live session; shown, never stored."""

    provider: str
    quote: Quote


class BarsWritten(msgspec.Struct, frozen=True, gc=False):
    """Rows of one series committed by the writer (`interval` is None for ticks)."""

    table: str
    provider: str
    symbol: str
    interval: str | None
    count: int
    last_ts: datetime


RunStatus = Literal["ok", "partial", "failed"]


class JobRun(msgspec.Struct, frozen=True):
    provider: str
    symbol: str
    interval: str
    status: RunStatus
    rows: int
    started_at: datetime
    finished_at: datetime
    error: str | None = None


ProviderStateName = Literal["connecting", "connected", "disconnected", "error", "idle"]


class ProviderState(msgspec.Struct, frozen=True):
    provider: str
    state: ProviderStateName
    detail: str | None = None


class EngineError(msgspec.Struct, frozen=True):
    source: str
    message: str
    at: datetime = msgspec.field(default_factory=utc_now)


class WriterStats(msgspec.Struct, frozen=True):
    """One table's writer: rows waiting, how old the oldest is, throughput, rows held in retry."""

    table: str
    queue_depth: int
    queue_capacity: int
    lag_seconds: float
    rows_per_second: float
    pending_retry: int


class AlertFired(msgspec.Struct, frozen=True):
    """An alert rule fired: what the console shows and every delivery sends (`details` are
    JSON-ready figures: the price and level, the gap's span, the provider's state...)."""

    rule_id: int
    kind: str
    key: str  # PROVIDER:SYMBOL, or the provider's name
    message: str
    at: datetime
    details: dict[str, Any] = msgspec.field(default_factory=dict)


Level = Literal["info", "warning", "error"]
_RUN_LEVELS: dict[str, Level] = {"ok": "info", "partial": "warning", "failed": "error"}


class LogLine(msgspec.Struct, frozen=True):
    """What the Log shows of an event: the same words for the engine's published events and
    for a console following its own engine."""

    level: Level
    source: str
    message: str
    at: datetime | None = None  # None: when it was heard


#: Provider states worth a warning (the providers table records them as they are).
DOWN_STATES = ("disconnected", "error")


def log_line(event: JobRun | ProviderState | EngineError) -> LogLine:
    """The Log line for a low-rate event."""
    if isinstance(event, JobRun):
        text = f"{event.symbol} {event.interval}: {event.status}, {event.rows} rows"
        if event.error:
            text += f" ({event.error})"
        return LogLine(_RUN_LEVELS[event.status], event.provider, text, event.finished_at)
    if isinstance(event, ProviderState):
        detail = f": {event.detail}" if event.detail else ""
        level: Level = "warning" if event.state in DOWN_STATES else "info"
        return LogLine(level, event.provider, event.state + detail)
    return LogLine("error", event.source, event.message, event.at)


Event = (
    TickEvent
    | TradesRead
    | QuoteEvent
    | BarsWritten
    | JobRun
    | ProviderState
    | EngineError
    | WriterStats
    | AlertFired
)


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
        queue = self._queue
        if not queue:
            self._ready.set()  # a waiting consumer only ever waits on an empty queue
        elif len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(event)

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


class Listener:
    """A consumer called inside `publish`, for work that is cheaper than a queue hop (the
    alert evaluator on every message of trades). It must be quick and must not block; what
    it raises is logged by the bus and does not reach the publisher."""

    def __init__(self, kinds: tuple[type, ...], call: Callable[[Any], None]) -> None:
        self.kinds = kinds
        self._call = call

    def offer(self, event: Event) -> None:
        if isinstance(event, self.kinds):
            self._call(event)

    def close(self) -> None:
        self.kinds = ()


class EventBus:
    """Fan-out of engine events to any number of subscriptions.

    Publish and consume from the engine's event loop; `publish` is synchronous and cheap.
    """

    def __init__(self) -> None:
        self._subscriptions: list[Subscription | Listener] = []
        self._wants: dict[type, bool] = {}

    def wants(self, kind: type) -> bool:
        """Whether any subscription takes events of `kind`: a publisher of many small events
        (a tick each) skips making them when nobody listens."""
        known = self._wants.get(kind)
        if known is None:
            known = self._wants[kind] = any(
                s.kinds is None or issubclass(kind, s.kinds) for s in self._subscriptions
            )
        return known

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
        self._wants = {}
        return subscription

    def listen(self, kinds: tuple[type, ...], call: Callable[[Any], None]) -> Listener:
        """Call `call` with each event of `kinds` as it is published (see `Listener`); it is
        only given events of those kinds."""
        listener = Listener(kinds, call)
        self._subscriptions = [*self._subscriptions, listener]
        self._wants = {}
        return listener

    def unsubscribe(self, subscription: Subscription | Listener) -> None:
        subscription.close()
        self._subscriptions = [s for s in self._subscriptions if s is not subscription]
        self._wants = {}
