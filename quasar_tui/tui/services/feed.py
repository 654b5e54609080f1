"""The one adapter from the engine to the screens.

Attached to a daemon it polls what the daemon publishes in the database until that engine
stops, then runs one here (when it may) and follows that; with its own engine it reads the same
conflated quotes from the engine's memory and its news from the in-process event bus. Either way
quotes reach the `LiveBook` by one path (`_apply_quotes`), at a rate that does not grow with the
ticks', and screens get the same things: the book, the `EngineView` for the dashboard, and
`LogEntry` lines (errors also notify).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from typing import TYPE_CHECKING

from textual.message import Message

from quasar_tui.core.clock import utc_now
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.events import (
    BarsWritten,
    EngineError,
    Event,
    EventBus,
    JobRun,
    ProviderState,
    Subscription,
    log_line,
)
from quasar_tui.engine.lock import EngineOwner
from quasar_tui.engine.publisher import EngineMonitor, PublishedQuote
from quasar_tui.tui.livebook import Key
from quasar_tui.tui.services.log import LogEntry
from quasar_tui.tui.services.reads import READ_ERRORS

if TYPE_CHECKING:
    from quasar_tui.tui.services import Services

EVENT_QUEUE = 1000
QUOTES_HZ = 10.0
POLL_SECONDS = 0.5
STATUS_SECONDS = 1.0


@dataclass(frozen=True)
class BusTaps:
    """The console's subscription on the engine's bus, taken before the engine starts so
    nothing it says while starting is lost: the few events that are all shown (ticks are read
    conflated, as quotes)."""

    events: Subscription

    @classmethod
    def on(cls, bus: EventBus) -> BusTaps:
        return cls(
            bus.subscribe(
                maxsize=EVENT_QUEUE, kinds=(BarsWritten, JobRun, ProviderState, EngineError)
            )
        )

    def close(self, bus: EventBus) -> None:
        bus.unsubscribe(self.events)


class EngineLogged(Message):
    """A Log line: an engine event, what a daemon published, or the feed's own news."""

    def __init__(self, entry: LogEntry) -> None:
        super().__init__()
        self.entry = entry


class EngineNews(Message, bubble=False):
    """A Log line the app hands to the screen on show, so it can redraw what the line is about
    (the Dashboard's errors and engine panel) at once rather than at its next timer."""

    def __init__(self, entry: LogEntry) -> None:
        super().__init__()
        self.entry = entry


class EngineTakenOver(Message):
    """The engine this console watched stopped, and this console runs one now."""

    def __init__(self, gone: EngineOwner | None) -> None:
        super().__init__()
        self.gone = gone


def feed_stopped(error: BaseException | None) -> LogEntry:
    """The feed never ends by itself: if a bug ends it, the Log and a toast say so rather than
    the console going quiet."""
    return LogEntry(
        utc_now(),
        "error",
        "console",
        f"live data stopped ({type(error).__name__}: {error}); restart the console",
    )


class EngineFeed:
    """The one adapter from engine to screens; `run()` lasts until cancelled, never raises.

    Low-rate news (Log lines, the takeover) goes out as Textual messages through `post`;
    ticks and figures go into the services' `LiveBook` and `EngineView`, read on timers."""

    def __init__(self, services: Services, post: Callable[[Message], object]) -> None:
        self.services = services
        self.post = post
        self._quote_ticks: dict[Key, int] = {}
        self._quotes_since: datetime | None = None
        self._last_event_id = 0

    def _log(self, level: str, source: str, message: str, at: datetime | None = None) -> None:
        self.post(EngineLogged(LogEntry(at or utc_now(), level, source, message)))

    async def run(self) -> None:
        """Attached: watch the daemon until its engine stops, then run the engine here (when
        this console may, and gets the lock first) and follow it like one started here."""
        services = self.services
        while services.attached:
            await self._watch_daemon(services.monitor)
            await self._take_over()
        engine, taps = services.engine, services.taps
        assert engine is not None and taps is not None
        await self._follow(engine, taps)

    # -- own engine: the event bus -------------------------------------------------------

    async def _follow(self, engine: Engine, taps: BusTaps) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow_quotes(engine))
            tasks.create_task(self._follow_events(taps.events))
            tasks.create_task(self._sample(engine))

    async def _follow_quotes(self, engine: Engine) -> None:
        """The quotes the engine publishes, as a daemon's are read, from memory: a few reads a
        second cost the same at 10 or 10,000 ticks/s. Every tick of this engine counts."""
        since = 0
        while True:
            quotes, since = engine.quotes_changed(since)
            self._apply_quotes(quotes, first_ticks_known=True)
            await asyncio.sleep(1 / QUOTES_HZ)

    async def _sample(self, engine: Engine) -> None:
        """The same figures an attached console reads from the daemon's published stats."""
        view = self.services.view
        while True:
            view.owner = engine.owner
            view.running = engine.running
            view.apply_stats(engine.stats())
            await asyncio.sleep(STATUS_SECONDS)

    async def _follow_events(self, cold: Subscription) -> None:
        async for event in cold:
            try:
                self.handle(event)
            except Exception as exc:  # a malformed event must not end the feed
                self._log("error", "console", f"could not show {type(event).__name__}: {exc}")

    def handle(self, event: Event) -> None:
        view = self.services.view
        match event:
            case BarsWritten():
                if event.interval is not None:
                    key = (event.provider, event.symbol, event.interval)
                    view.last_bars[key] = event.last_ts
            case JobRun() | EngineError() | ProviderState():
                if isinstance(event, ProviderState):
                    view.providers[event.provider] = event
                line = log_line(event)
                self._log(line.level, line.source, line.message, line.at)

    # -- attached: what the daemon publishes ---------------------------------------------

    async def _watch_daemon(self, monitor: EngineMonitor) -> None:
        """Poll what the daemon publishes; return once no engine runs and this console may
        run one."""
        next_status = 0.0
        failing = False
        while True:
            try:
                if monotonic() >= next_status:
                    status = await monitor.status()
                    self.services.view.apply_status(status)
                    next_status = monotonic() + STATUS_SECONDS
                    if not status.running and self.services.may_run_engine:
                        return
                quotes = await monitor.quotes(self._quotes_since)
                self._quotes_since = self._apply_quotes(quotes) or self._quotes_since
                for record in await monitor.events(self._last_event_id):
                    self._last_event_id = record.id
                    self._log(record.level, record.source, record.message, record.at)
                if failing:
                    self._log("info", "console", "reading the daemon's status again")
                failing = False
            except READ_ERRORS as exc:
                if not failing:
                    self._log("error", "console", f"cannot read the daemon's status: {exc}")
                failing = True
            await asyncio.sleep(POLL_SECONDS)

    async def _take_over(self) -> None:
        """No engine holds the lock (the daemon stopped): run one here, and say so. Another
        process may take the lock first; this console then watches that one."""
        services = self.services
        gone = services.view.owner
        if not await services.start_engine():
            return
        services.view.took_over_from = gone
        who = f"the {gone.mode} on {gone.host}:{gone.pid}" if gone else "no engine"
        self._log(
            "warning",
            "console",
            f"{who} stopped running; this console runs the engine now (until it quits)",
        )
        self.post(EngineTakenOver(gone))

    def _apply_quotes(
        self, quotes: list[PublishedQuote], *, first_ticks_known: bool = False
    ) -> datetime | None:
        """Quotes into the book; returns the newest `updated_at` among them. A quote's ticks
        count from its previous reading; at its first, all of them when `first_ticks_known`
        (this process's engine), else none (a daemon's, running since before)."""
        book = self.services.book
        unknown = 0 if first_ticks_known else None
        now = monotonic()
        newest: datetime | None = None
        for q in quotes:
            key = (q.provider, q.symbol)
            previous = self._quote_ticks.get(key, unknown)
            self._quote_ticks[key] = q.ticks
            book.apply_quote(
                q.provider,
                q.symbol,
                q.ts,
                last=q.last,
                bid=q.bid,
                ask=q.ask,
                volume=q.volume,
                ref=q.open,
                ticks=0 if previous is None else q.ticks - previous,
                now=now,
            )
            if q.updated_at is not None and (newest is None or q.updated_at > newest):
                newest = q.updated_at
        return newest
