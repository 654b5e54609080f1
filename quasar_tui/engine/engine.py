"""The collector engine: the one asyncio object that the console and the daemon both run.

It holds the one-engine-per-database lock, keeps provider instances (engine/provider_pool.py),
historical jobs (engine/jobs.py) and live sessions (engine/sessions.py) in line with the
registry and subscriptions tables, hears user edits through LISTEN/NOTIFY, publishes typed events
on its bus and, for consoles in other processes, through the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from quasar_tui.core.clock import Clock, utc_now
from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.engine.alerts import AlertService
from quasar_tui.engine.events import (
    AlertFired,
    EngineError,
    Event,
    EventBus,
    JobRun,
    ProviderState,
    QuoteEvent,
    Subscription,
    TradesRead,
    log_line,
)
from quasar_tui.engine.jobs import HistoricalJobs
from quasar_tui.engine.lock import EngineLock, EngineLockedError, EngineOwner
from quasar_tui.engine.provider_pool import ProviderPool
from quasar_tui.engine.publisher import PublishedQuote, Publisher
from quasar_tui.engine.sessions import LiveSessions
from quasar_tui.engine.shared import Shared
from quasar_tui.engine.states import DB_ERRORS, SubscriptionStates, SubState, guard
from quasar_tui.engine.writer import Writer
from quasar_tui.registry.alerts import CHANGES_CHANNEL as ALERTS_CHANNEL
from quasar_tui.registry.alerts import AlertStore
from quasar_tui.registry.mappings import CHANGED_TABLES as MAPPING_TABLES
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import (
    BACKFILL_PREFIX,
    CHANGES_CHANNEL,
    SubscriptionRecord,
    SubscriptionStore,
)
from quasar_tui.sandbox.hosted import HostOptions
from quasar_tui.store.database import Database
from quasar_tui.store.timescale import policy_jobs, prune_expired_ticks

log = logging.getLogger("quasar.engine")

MODES = ("daemon", "console")
ALERT_SOURCE = "alert"  # the source of alerts among the published engine events
_PUMP_QUEUE = 50_000
# Allocations between collections of the youngest generation (Python's default is 700): the
# live path makes a row tuple or two per trade, nearly all freed at once by reference counts.
_GC_YOUNG = 50_000
_TICK_RETENTION_DAYS = 30
# Holding the lock, no other engine runs jobs: an unfinished run was cut short by a crash.
_CLOSE_DEAD_RUNS = """
    UPDATE collection_runs
       SET finished_at = now(), status = 'failed',
           error = 'interrupted: the engine stopped without finishing it'
     WHERE finished_at IS NULL
"""


class Engine:
    """Collects what the subscriptions table asks for; see the module docstring."""

    def __init__(
        self,
        db: Database,
        registry: ProviderRegistry,
        subscriptions: SubscriptionStore,
        *,
        data_dir: Path | None = None,
        mode: str = "console",
        clock: Clock | None = None,
        bus: EventBus | None = None,
        writer: Writer | None = None,
        reconcile_every: float = 30.0,
        bar_delay: float = 10.0,
        live_options: dict[str, Any] | None = None,
        host_options: HostOptions | None = None,
    ) -> None:
        """`data_dir` is published so an attached console can tell whose master key the
        engine uses. `clock` is market time for historical runs and live sessions (tests run
        it fast); `live_options` go to every `LiveSession`, `host_options` to every provider's
        host supervisor (restart backoff, unresponsive limit)."""
        if mode not in MODES:
            raise ValueError(f"engine mode must be one of {MODES}, not {mode!r}")
        self.db = db
        self.registry = registry
        self.subscriptions = subscriptions
        self.data_dir = data_dir
        self.mode = mode
        self.clock = clock or utc_now
        self._timescale_jobs: list[str] = []  # TimescaleDB's policy jobs, one line each
        self.bus = bus or EventBus()
        self.writer = writer or Writer(db, self.bus)
        self.owner: EngineOwner | None = None
        self.failure: str | None = None
        self._reconcile_every = reconcile_every
        self._lock = EngineLock(db)
        self._states = SubscriptionStates(subscriptions)
        self._providers = ProviderPool(registry, self.bus, host_options)
        shared = Shared(db, self.writer, self.bus, self._providers, self._states, self.clock)
        self._jobs = HistoricalJobs(shared, bar_delay=bar_delay)
        self._sessions = LiveSessions(shared, options=live_options or {})
        self._publisher: Publisher | None = None
        self.alerts = AlertService(AlertStore(db, registry.keyring), self.bus, self.clock)
        self._listener: asyncpg.Connection | None = None
        self._reconcile_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._pump_feed: Subscription | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._control_task: asyncio.Task[None] | None = None
        self._running = False

    @classmethod
    def create(
        cls, db: Database, *, data_dir: Path, mode: str = "console", **options: Any
    ) -> Engine:
        """An engine over the registry and subscriptions of `db`, with the data dir's key."""
        registry = ProviderRegistry(db, Keyring.load_or_create(data_dir))
        return cls(db, registry, SubscriptionStore(db), data_dir=data_dir, mode=mode, **options)

    @property
    def running(self) -> bool:
        return self._running

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, *, wait: bool = False) -> None:
        """Take the lock (or raise `EngineLockedError`; with `wait`, wait for it), then start
        collecting."""
        await self._lock.acquire(wait=wait)
        self._running = True
        self._done.clear()
        self.owner = EngineOwner(socket.gethostname(), os.getpid(), self.mode, utc_now(), utc_now())
        try:
            closed = await self.db.execute(_CLOSE_DEAD_RUNS)
            if not closed.endswith(" 0"):
                log.info(
                    "marked %s run(s) cut short by an earlier crash as failed", closed.split()[-1]
                )
            for line in await self.registry.ensure_bundled():
                log.info("%s", line)
            await self.writer.start()
            self._publisher = Publisher(self.db, self.owner, self.stats)
            await self._publisher.start()
            self._pump_feed = self.bus.subscribe(
                maxsize=_PUMP_QUEUE,
                kinds=(TradesRead, QuoteEvent, JobRun, ProviderState, EngineError, AlertFired),
            )
            self._pump_task = asyncio.create_task(self._pump(self._pump_feed), name="engine:pump")
            await self.alerts.start()
            await self._listen()
            self._jobs.start()
            self._jobs.add_periodic(self._housekeeping, 3600.0, "housekeeping")
            self._jobs.add_periodic(self._watch_timescale, 300.0, "timescaledb jobs")
            await self._watch_timescale()
            await self.reconcile()
            self._control_task = asyncio.create_task(self._control(), name="engine:control")
            _settle_memory()
        except BaseException:
            await self.stop()
            raise
        log.info("engine started (%s, %s:%d)", self.mode, self.owner.host, self.owner.pid)

    async def stop(self) -> None:
        """Stop sessions and jobs, write everything queued, release the lock."""
        if not self._running:
            return
        self._running = False
        await _cancel(self._control_task)
        self._control_task = None
        await self._jobs.stop()
        await self._sessions.stop_all()
        if self.writer.running:
            await self.writer.stop()
        for name in self._providers.names():
            await self._unload(name)
        await self.alerts.stop()
        await _cancel(self._pump_task)
        self._pump_task = None
        if self._pump_feed is not None:  # what the last flushes and the shutdown reported
            self.bus.unsubscribe(self._pump_feed)
            for event in self._pump_feed.drain():
                self._forward(event)
            self._pump_feed = None
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None
        await self._close_listener()
        await self._lock.release()
        self._done.set()
        log.info("engine stopped")

    async def wait_stopped(self) -> None:
        """Return once the engine has stopped, or can no longer go on (see `failure`)."""
        await self._done.wait()

    def backfill_now(self, sub_id: int) -> bool:
        """Run a historical subscription's job now; False when it has no job here."""
        return self._jobs.run_now(sub_id)

    # -- reconciliation --------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Make providers, jobs and sessions match the registry and subscriptions tables."""
        async with self._reconcile_lock:
            if not self._running:
                return
            records = {p.name: p for p in await self.registry.list()}
            subs = await self.subscriptions.list()
            usable = {
                name: rec
                for name, rec in records.items()
                if rec.enabled and any(s.enabled and s.provider == name for s in subs)
            }
            reloaded: set[str] = set()
            for name in self._providers.names():
                rec = usable.get(name)
                if rec is None or not self._providers.is_current(name, rec):
                    await self._unload(name)
                    reloaded.add(name)
            for name, rec in usable.items():
                if name not in self._providers:
                    await self._providers.load(rec)
            self._providers.keep_health_of(set(usable))
            historical: dict[int, SubscriptionRecord] = {}
            live: dict[str, dict[str, set[Interval]]] = {}
            for sub in subs:
                problem = self._problem(sub, records.get(sub.provider))
                if problem is not None:
                    await self._states.set(sub, problem)
                elif sub.mode == "historical":
                    historical[sub.id] = sub
                else:
                    live.setdefault(sub.provider, {}).setdefault(sub.symbol, set()).add(
                        Interval(sub.interval)
                    )
            await self._providers.sync_status(records)
            self._jobs.reconcile(historical)
            for sid, sub in historical.items():
                if sub.provider in reloaded:  # new code or settings: collect with them now
                    self._jobs.run_now(sid)
            await self._sessions.reconcile(live, [s for s in subs if s.mode == "live"])

    def _problem(self, sub: SubscriptionRecord, record: ProviderRecord | None) -> SubState | None:
        """Why a subscription cannot run now; None when it can."""
        if not sub.enabled:
            return SubState("paused")
        if record is None or not record.enabled:
            return SubState("paused", f"provider {sub.provider} is disabled")
        failure = self._providers.failure(sub.provider)
        if failure is not None:
            return SubState("error", f"provider {sub.provider} failed to load: {failure}")
        instance = self._providers.instance(sub.provider)
        if instance is None:
            return None  # not loaded: a provider with no enabled subscription
        if instance.state.startswith("parked"):
            return SubState("error", f"provider {sub.provider} is {instance.state}")
        if sub.mode == "live" and instance.kind != "live":
            return SubState("error", f"{sub.provider} has no live feed")
        if sub.mode == "historical" and not instance.has_history:
            return SubState("error", f"{sub.provider} has no history")
        return None

    async def _unload(self, name: str) -> None:
        """Stop what uses the instance, then close it (its code or settings changed)."""
        await self._sessions.stop(name)
        self._jobs.interrupt_provider(name)
        await self._providers.close(name)

    # -- change notifications and the control loop -----------------------------------------

    async def _listen(self) -> None:
        conn = await self.db.connect()
        await conn.add_listener(CHANGES_CHANNEL, self._on_notify)
        await conn.add_listener(ALERTS_CHANNEL, lambda *_: self.alerts.reload_soon())
        conn.add_termination_listener(lambda _conn: self._wake.set())
        self._listener = conn

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(BACKFILL_PREFIX):
            sid = payload.removeprefix(BACKFILL_PREFIX)
            if sid.isdigit() and self.backfill_now(int(sid)):
                return
        if payload in MAPPING_TABLES:  # nothing to reconcile; rules on common symbols move
            self.alerts.reload_soon()
            return
        self._wake.set()

    async def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except DB_ERRORS as exc:
                log.debug("closing the listener failed: %s", exc)
                conn.terminate()

    async def _control(self) -> None:
        """Reconcile on every change notification, and every `reconcile_every` seconds anyway;
        after a database outage, re-listen, re-take the lock and reconcile."""
        healthy = True
        while True:
            timeout = self._reconcile_every if healthy else 2.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                await self._ensure_connections()
                await self.reconcile()
            except EngineLockedError as exc:
                self.failure = f"lost the engine lock during a database outage: {exc}"
                log.error("%s", self.failure)
                self.bus.publish(EngineError("engine", self.failure))
                self._done.set()
                return
            except DB_ERRORS as exc:
                if healthy:
                    log.warning("engine cannot reach the database (will retry): %s", one_line(exc))
                healthy = False
                continue
            except Exception as exc:  # a bug must not end the loop that applies user edits
                log.exception("reconciling failed")
                self.bus.publish(EngineError("engine", f"reconciling failed: {one_line(exc)}"))
                continue
            if not healthy:
                log.info("engine reconnected to the database")
            healthy = True

    async def _ensure_connections(self) -> None:
        if not self._lock.held:
            await self._lock.acquire()
            log.info("engine lock taken again after a lost connection")
        if self._listener is None or self._listener.is_closed():
            await self._close_listener()
            await self._listen()
            self.alerts.reload_soon()  # rule edits made while the listener was away

    async def _watch_timescale(self) -> None:
        """TimescaleDB's policy jobs as the Dashboard shows them (none without TimescaleDB)."""
        try:
            jobs = await policy_jobs(self.db.pool)
        except DB_ERRORS as exc:
            log.info("reading TimescaleDB's policy jobs failed: %s", one_line(exc))
            return
        now = self.clock()
        self._timescale_jobs = [job.summary(now) for job in jobs or []]

    async def _housekeeping(self) -> None:
        """Tick retention, unless TimescaleDB's retention job is doing it (see store.timescale)."""
        await guard(prune_expired_ticks(self.db.pool, _TICK_RETENTION_DAYS, self.clock()))

    # -- publishing ------------------------------------------------------------------------

    async def _pump(self, subscription: Subscription) -> None:
        async for event in subscription:  # woken once, then everything queued meanwhile
            self._forward(event)
            for queued in subscription.drain():
                self._forward(queued)

    def _forward(self, event: Event) -> None:
        publisher = self._publisher
        if publisher is None:
            return
        match event:
            case TradesRead():
                publisher.note_ticks(event.provider, event.ticks)
            case QuoteEvent():
                publisher.note_quote(event)
            case JobRun() | EngineError() | ProviderState():
                if isinstance(event, ProviderState):
                    self._providers.note(event.provider, event.state, event.detail)
                line = log_line(event)
                publisher.note_event(line.level, line.source, line.message)
            case AlertFired():  # attached consoles read it from the published events
                publisher.note_event("warning", ALERT_SOURCE, event.message)

    def quotes_changed(self, since: int) -> tuple[list[PublishedQuote], int]:
        """The quotes this engine publishes that changed after change number `since`, and the
        number to pass next time (see `Publisher.quotes_changed`); none while stopped."""
        if self._publisher is None:
            return [], 0
        return self._publisher.quotes_changed(since)

    def stats(self) -> dict[str, Any]:
        """What `engine_status.stats` carries for attached consoles and `quasar status`."""
        writers = self.writer.stats()
        return {
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "providers": self._providers.health(),
            "writers": writers,
            "rows_written": sum(int(w.get("rows_written", 0)) for w in writers.values()),
            "historical_jobs": self._jobs.scheduler.job_count,
            "running_jobs": self._jobs.running_count,
            "live_sessions": self._sessions.symbol_counts(),
            "live_counters": self._sessions.counters(),
            "timescaledb_jobs": self._timescale_jobs,
            "alerts": self.alerts.stats(),
            "backfills": msgspec.to_builtins(self._jobs.backfills.snapshot()),
        }


def _settle_memory() -> None:
    """What starting made (modules, providers, registry rows) lives as long as the engine: it
    is moved out of the collector's reach, so collections only scan what is new, and young
    collections run less often (see `_GC_YOUNG`)."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(_GC_YOUNG, young), middle, old)


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
