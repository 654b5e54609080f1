"""What the console holds: the database, the registry stores, and an engine it runs or watches.

With its own engine the console follows the in-process event bus; when a daemon holds the
engine lock it attaches and polls what the daemon publishes in the database. Either way one
adapter (`EngineFeed`) turns what it hears into the same things for screens: a conflated
`LiveBook`, an `EngineView` for the dashboard, and `LogEntry` lines (errors also notify).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic
from typing import Any

import asyncpg
import msgspec

from quasar_tui.core.clock import utc_now
from quasar_tui.core.errors import QuasarError
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.events import (
    BarsWritten,
    EngineError,
    Event,
    EventBus,
    JobRun,
    ProviderState,
    QuoteEvent,
    Subscription,
    TickEvent,
    WriterStats,
    log_line,
)
from quasar_tui.engine.lock import EngineLockedError, EngineOwner
from quasar_tui.engine.publisher import EngineMonitor, EngineStatus, PublishedQuote
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.database import Database
from quasar_tui.tui.livebook import Key, LiveBook

log = logging.getLogger("quasar.tui")

LOG_KEPT = 5000
HOT_QUEUE = 50_000
COLD_QUEUE = 1000
HOT_HZ = 10.0
POLL_SECONDS = 0.5
STATUS_SECONDS = 1.0
READ_ERRORS = (QuasarError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
"""What a screen's database read can raise that must become a message, not a crash."""


@dataclass(frozen=True)
class ConsoleOptions:
    """How the console draws: `fps` caps the screen and the live repaint rate (slow links)."""

    animation: bool = True
    clock: bool = True
    fps: int | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    keymap_path: Path | None = None

    @property
    def repaint_hz(self) -> float:
        return min(4.0, float(self.fps)) if self.fps else 4.0


@dataclass(frozen=True)
class LogEntry:
    at: datetime
    level: str
    source: str
    message: str


@dataclass
class EngineView:
    """The engine as the dashboard shows it: `Engine.stats()` and bus events when it runs here,
    the daemon's published status when attached."""

    owner: EngineOwner | None
    attached: bool
    running: bool = True
    providers: dict[str, ProviderState] = field(default_factory=dict)
    writers: dict[str, WriterStats] = field(default_factory=dict)
    last_bars: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    rows_written: int = 0
    errors: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=50))
    took_over_from: EngineOwner | None = None

    @property
    def label(self) -> str:
        """What the header says about who runs the engine."""
        if not self.attached:
            gone = self.took_over_from
            since = f"; took over from {gone.mode} {gone.host}:{gone.pid}" if gone else ""
            return f"engine runs here (pid {os.getpid()}{since})"
        if not self.running:
            return "no engine running: edits are kept for the next one"
        if self.owner is None:
            return "attached to an engine (starting up)"
        return f"attached to {self.owner.mode} {self.owner.host}:{self.owner.pid}"

    def apply_status(self, status: EngineStatus) -> None:
        """A daemon's published status (attached consoles)."""
        self.owner = status.owner or self.owner
        self.running = status.running
        self.apply_stats(status.stats)

    def apply_stats(self, stats: dict[str, Any]) -> None:
        """`Engine.stats()`, read in-process or as the daemon published it."""
        for name, state in (stats.get("providers") or {}).items():
            if (converted := _convert(state, ProviderState, provider=name)) is not None:
                self.providers[name] = converted
        for table, writer in (stats.get("writers") or {}).items():
            if (converted := _convert(writer, WriterStats, table=table)) is not None:
                self.writers[table] = converted
        self.rows_written = int(stats.get("rows_written") or 0)


def _convert(data: Any, kind: type[Any], **fixed: Any) -> Any:
    """A stats entry back into the event struct; None for one this console cannot read
    (a daemon of another version), so an odd entry costs its row, not the dashboard."""
    try:
        return msgspec.convert({**data, **fixed}, kind)
    except (msgspec.ValidationError, TypeError):
        log.debug("unreadable engine stats entry for %s: %r", kind.__name__, data)
        return None


@dataclass(frozen=True)
class BusTaps:
    """The console's two subscriptions on the engine's bus, taken before the engine starts so
    nothing it says while starting is lost: ticks (many, conflated, dropping the oldest is
    harmless) apart from everything else (few, all of them shown)."""

    hot: Subscription
    cold: Subscription

    @classmethod
    def on(cls, bus: EventBus) -> BusTaps:
        return cls(
            bus.subscribe(maxsize=HOT_QUEUE, kinds=(TickEvent, QuoteEvent)),
            bus.subscribe(
                maxsize=COLD_QUEUE, kinds=(BarsWritten, JobRun, ProviderState, EngineError)
            ),
        )

    def close(self, bus: EventBus) -> None:
        bus.unsubscribe(self.hot)
        bus.unsubscribe(self.cold)


class Services:
    """The console's handles: database, registry stores, and the engine or its monitor.

    `may_run_engine` False (tests, screenshots) never starts an engine here, not even when
    none runs elsewhere."""

    def __init__(
        self, db: Database, data_dir: Path, keyring: Keyring, *, may_run_engine: bool = True
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self.may_run_engine = may_run_engine
        self.providers = ProviderRegistry(db, keyring)
        self.assets = AssetStore(db)
        self.mappings = MappingStore(db)
        self.subscriptions = SubscriptionStore(db)
        self.engine: Engine | None = None
        self.taps: BusTaps | None = None
        self.monitor = EngineMonitor(db)
        self.book = LiveBook()
        self.log: deque[LogEntry] = deque(maxlen=LOG_KEPT)
        self.view = EngineView(owner=None, attached=True)

    @property
    def attached(self) -> bool:
        return self.engine is None

    @classmethod
    @asynccontextmanager
    async def running(
        cls, db: Database, data_dir: Path, *, run_engine: bool = True
    ) -> AsyncIterator[Services]:
        """Start an engine here, or attach when a daemon (or another console) holds the lock;
        an engine started here (at once or later, see `start_engine`) stops and flushes on
        exit. The database stays open: it is the caller's."""
        services = cls(db, data_dir, Keyring.load_or_create(data_dir), may_run_engine=run_engine)
        try:
            if run_engine:
                await services.start_engine()
            yield services
        finally:
            await services.stop_engine()

    async def start_engine(self) -> bool:
        """Run the engine in this process; False (and still attached) when another process
        holds the engine lock. The taps go on the bus before the engine starts so nothing it
        says while starting is lost."""
        engine = Engine.create(self.db, data_dir=self.data_dir, mode="console")
        taps = BusTaps.on(engine.bus)
        try:
            await engine.start()
        except EngineLockedError as exc:
            taps.close(engine.bus)
            self.view.owner = exc.owner
            return False
        except BaseException:
            taps.close(engine.bus)
            raise
        self.engine, self.taps = engine, taps
        self.view.attached, self.view.running, self.view.owner = False, True, engine.owner
        return True

    async def stop_engine(self) -> None:
        engine, taps = self.engine, self.taps
        if engine is None or taps is None:
            return
        taps.close(engine.bus)
        await engine.stop()

    def record(self, entry: LogEntry) -> None:
        self.log.append(entry)
        if entry.level == "error":
            self.view.errors.append(entry)


Emit = Callable[[LogEntry], None]


class EngineFeed:
    """The one adapter from engine to screens; `run()` lasts until cancelled, never raises."""

    def __init__(self, services: Services, emit: Emit) -> None:
        self.services = services
        self.emit = emit
        self._quote_ticks: dict[Key, int] = {}

    def _log(self, level: str, source: str, message: str, at: datetime | None = None) -> None:
        self.emit(LogEntry(at or utc_now(), level, source, message))

    async def run(self) -> None:
        """Follow the engine here; when attached, poll what the daemon publishes until this
        console takes the engine over (the daemon stopped), then follow it here."""
        services = self.services
        if services.attached:
            await self._poll(services.monitor)
        engine, taps = services.engine, services.taps
        if engine is not None and taps is not None:
            await self._follow(engine, taps)

    # -- own engine: the event bus -------------------------------------------------------

    async def _follow(self, engine: Engine, taps: BusTaps) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._drain_ticks(taps.hot))
            tasks.create_task(self._follow_events(taps.cold))
            tasks.create_task(self._sample(engine))

    async def _drain_ticks(self, hot: Subscription) -> None:
        """Ticks are batched: a few drains a second cost the same at 10 or 10,000 ticks/s."""
        book = self.services.book
        while True:
            now = monotonic()
            for event in hot.drain():
                if isinstance(event, TickEvent):
                    t = event.tick
                    book.apply_tick(
                        event.provider, t.symbol, t.ts, t.price, t.size, t.bid, t.ask, now
                    )
                elif isinstance(event, QuoteEvent):
                    q = event.quote
                    book.apply_quote(
                        event.provider,
                        q.symbol,
                        q.ts,
                        last=q.last,
                        bid=q.bid,
                        ask=q.ask,
                        volume=q.volume,
                        change_pct=q.change_pct,
                        now=now,
                    )
            await asyncio.sleep(1 / HOT_HZ)

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

    async def _poll(self, monitor: EngineMonitor) -> None:
        """Until the engine lock is free and this console gets it (when it may run one)."""
        since: datetime | None = None
        last_id = 0
        next_status = 0.0
        failing = False
        while True:
            try:
                if monotonic() >= next_status:
                    status = await monitor.status()
                    self.services.view.apply_status(status)
                    next_status = monotonic() + STATUS_SECONDS
                    if not status.running and await self._take_over():
                        return
                since = self._apply_quotes(await monitor.quotes(since)) or since
                for record in await monitor.events(last_id):
                    last_id = record.id
                    self._log(record.level, record.source, record.message, record.at)
                if failing:
                    self._log("info", "console", "reading the daemon's status again")
                failing = False
            except READ_ERRORS as exc:
                if not failing:
                    self._log("error", "console", f"cannot read the daemon's status: {exc}")
                failing = True
            await asyncio.sleep(POLL_SECONDS)

    async def _take_over(self) -> bool:
        """No engine holds the lock (the daemon stopped): run one here, and say so."""
        services = self.services
        if not services.may_run_engine:
            return False
        gone = services.view.owner
        if not await services.start_engine():
            return False
        services.view.took_over_from = gone
        who = f"the {gone.mode} on {gone.host}:{gone.pid}" if gone else "no engine"
        self._log(
            "warning",
            "console",
            f"{who} stopped running; this console runs the engine now (until it quits)",
        )
        return True

    def _apply_quotes(self, quotes: list[PublishedQuote]) -> datetime | None:
        book = self.services.book
        now = monotonic()
        newest: datetime | None = None
        for q in quotes:
            key = (q.provider, q.symbol)
            previous = self._quote_ticks.get(key)
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


class LogRecordBridge(logging.Handler):
    """Warnings and errors from Python logging into the Log mode: a full-screen app cannot let
    libraries print. (What the engine reports at info level arrives as events, the same way
    for an attached console.)"""

    def __init__(self, emit: Emit, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.WARNING)
        self._emit = emit
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = {"WARNING": "warning", "ERROR": "error", "CRITICAL": "error"}.get(
                record.levelname, "info"
            )
            entry = LogEntry(
                datetime.fromtimestamp(record.created, UTC),
                level,
                record.name,
                record.getMessage(),
            )
            self._loop.call_soon_threadsafe(self._emit, entry)
        except Exception:  # logging must never raise into the caller; Handler reports it
            self.handleError(record)
