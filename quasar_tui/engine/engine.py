"""The collector engine: the one asyncio object that the console and the daemon both run.

It holds the one-engine-per-database lock, keeps APScheduler jobs (historical) and live sessions
in line with the subscriptions table, hears user edits through LISTEN/NOTIFY, publishes typed
events on its bus and, for consoles in other processes, through the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from quasar_tui.core.errors import NotFoundError, QuasarError
from quasar_tui.core.intervals import Interval
from quasar_tui.engine.events import (
    EngineError,
    Event,
    EventBus,
    JobRun,
    ProviderState,
    QuoteEvent,
    Subscription,
    TickEvent,
    describe_error,
)
from quasar_tui.engine.historical import run_historical
from quasar_tui.engine.live import Clock, LiveSession, utc_now
from quasar_tui.engine.live_gaps import LiveGaps
from quasar_tui.engine.lock import EngineLock, EngineLockedError, EngineOwner
from quasar_tui.engine.publisher import Publisher
from quasar_tui.engine.scheduler import HistoricalScheduler
from quasar_tui.engine.tick_holes import newest_stored, stored_holes
from quasar_tui.engine.writer import Writer
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import (
    BACKFILL_PREFIX,
    CHANGES_CHANNEL,
    SubscriptionRecord,
    SubscriptionStore,
)
from quasar_tui.sdk.base import DataProvider, LiveDataProvider
from quasar_tui.store.database import Database
from quasar_tui.store.timescale import prune_expired_ticks

log = logging.getLogger("quasar.engine")

MODES = ("daemon", "console")
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_PUMP_QUEUE = 50_000
_TICK_RETENTION_DAYS = 30
# Holding the lock, no other engine runs jobs: an unfinished run was cut short by a crash.
_CLOSE_DEAD_RUNS = """
    UPDATE collection_runs
       SET finished_at = now(), status = 'failed',
           error = 'interrupted: the engine stopped without finishing it'
     WHERE finished_at IS NULL
"""

# Provider states (events) the providers table records as they are; any other is "ok".
_DOWN = ("disconnected", "error")


def one_line(exc: BaseException) -> str:
    """An exception as one line for states and statuses; a `QuasarError` is already worded
    for the user, so its class name is left out."""
    lines = str(exc).strip().splitlines()
    if isinstance(exc, QuasarError) and lines:
        return lines[0]
    return describe_error(exc)


@dataclass
class _Loaded:
    """A provider instance and the registry row version it was built from."""

    fingerprint: tuple[str, datetime]
    instance: DataProvider


@dataclass
class _Live:
    session: LiveSession
    task: asyncio.Task[None]
    symbols: dict[str, set[Interval]] = field(default_factory=dict)


def _label(sub: SubscriptionRecord) -> str:
    return f"{sub.provider} {sub.symbol} {sub.interval} {sub.mode} (id {sub.id})"


def _fingerprint(record: ProviderRecord) -> tuple[str, datetime]:
    """Code hash and last user edit (preferences, secrets, enabled all bump `updated_at`)."""
    return (record.sha256, record.updated_at)


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
    ) -> None:
        """`data_dir` is published so an attached console can tell whose master key the
        engine uses. `clock` is market time for historical runs and live sessions (tests run
        it fast); `live_options` go to every `LiveSession`."""
        if mode not in MODES:
            raise ValueError(f"engine mode must be one of {MODES}, not {mode!r}")
        self.db = db
        self.registry = registry
        self.subscriptions = subscriptions
        self.data_dir = data_dir
        self.mode = mode
        self.clock = clock or utc_now
        self.bus = bus or EventBus()
        self.writer = writer or Writer(db, self.bus)
        self.owner: EngineOwner | None = None
        self.failure: str | None = None
        self._reconcile_every = reconcile_every
        self._live_options = live_options or {}
        self._lock = EngineLock(db)
        self._scheduler = HistoricalScheduler(self._historical_job, delay=bar_delay)
        self._publisher: Publisher | None = None
        self._listener: asyncpg.Connection | None = None
        self._providers: dict[str, _Loaded] = {}
        self._failed: dict[str, tuple[tuple[str, datetime], str]] = {}
        self._provider_states: dict[str, dict[str, str | None]] = {}
        self._historical: dict[int, SubscriptionRecord] = {}
        self._jobs: dict[int, asyncio.Task[Any]] = {}
        self._sessions: dict[str, _Live] = {}
        self._states: dict[int, tuple[str, str | None]] = {}
        self._interrupted: set[int] = set()
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

    async def start(self) -> None:
        """Take the lock (or raise `EngineLockedError`), then start collecting."""
        await self._lock.acquire()
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
                kinds=(TickEvent, QuoteEvent, JobRun, ProviderState, EngineError),
            )
            self._pump_task = asyncio.create_task(self._pump(self._pump_feed), name="engine:pump")
            await self._listen()
            self._scheduler.start()
            self._scheduler.add_periodic(self._housekeeping, 3600.0, "housekeeping")
            await self.reconcile()
            self._control_task = asyncio.create_task(self._control(), name="engine:control")
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
        self._scheduler.shutdown()
        jobs = list(self._jobs.values())
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        for name in list(self._sessions):
            await self._stop_session(name)
        if self.writer.running:
            await self.writer.stop()
        for name in list(self._providers):
            await self._unload(name)
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
        return self._scheduler.run_now(sub_id)

    def wake(self) -> None:
        """Reconcile soon (an in-process edit; other processes are heard through NOTIFY)."""
        self._wake.set()

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
            for name in list(self._providers):
                rec = usable.get(name)
                if rec is None or _fingerprint(rec) != self._providers[name].fingerprint:
                    await self._unload(name)
                    reloaded.add(name)
            for name, rec in usable.items():
                if name not in self._providers:
                    await self._load(rec)
            for name in [n for n in self._provider_states if n not in usable]:
                del self._provider_states[name]
            historical: dict[int, SubscriptionRecord] = {}
            live: dict[str, dict[str, set[Interval]]] = {}
            for sub in subs:
                problem = self._problem(sub, records.get(sub.provider))
                if problem is not None:
                    await self._set_state(sub, *problem)
                elif sub.mode == "historical":
                    historical[sub.id] = sub
                else:
                    live.setdefault(sub.provider, {}).setdefault(sub.symbol, set()).add(
                        Interval(sub.interval)
                    )
            await self._sync_provider_status(records)
            self._reconcile_historical(historical)
            for sid, sub in historical.items():
                if sub.provider in reloaded:  # new code or settings: collect with them now
                    self._scheduler.run_now(sid)
            await self._reconcile_live(live, [s for s in subs if s.mode == "live"])

    def _problem(
        self, sub: SubscriptionRecord, record: ProviderRecord | None
    ) -> tuple[str, str | None] | None:
        """Why a subscription cannot run now, as (state, error); None when it can."""
        if not sub.enabled:
            return ("paused", None)
        if record is None or not record.enabled:
            return ("paused", f"provider {sub.provider} is disabled")
        if sub.provider in self._failed:
            return (
                "error",
                f"provider {sub.provider} failed to load: {self._failed[sub.provider][1]}",
            )
        instance = self._providers[sub.provider].instance
        if sub.mode == "live" and not isinstance(instance, LiveDataProvider):
            return ("error", f"{sub.provider} has no live feed")
        if sub.mode == "historical" and not callable(getattr(instance, "get_history", None)):
            return ("error", f"{sub.provider} has no history")
        return None

    def _reconcile_historical(self, wanted: dict[int, SubscriptionRecord]) -> None:
        self._historical = wanted
        added, removed = self._scheduler.reconcile(
            {sid: Interval(sub.interval) for sid, sub in wanted.items()}
        )
        for sid in removed:
            self._interrupt(sid)
        if added or removed:
            log.info("historical jobs: %d (+%d -%d)", len(wanted), len(added), len(removed))

    async def _reconcile_live(
        self, wanted: dict[str, dict[str, set[Interval]]], subs: list[SubscriptionRecord]
    ) -> None:
        for name in [n for n in self._sessions if n not in wanted]:
            await self._stop_session(name)
        for name, symbols in wanted.items():
            live = self._sessions.get(name)
            if live is None:
                live = await self._start_session(name, subs)
            if live.symbols != symbols:
                await live.session.set_subscriptions(symbols)
                live.symbols = symbols
                log.info("%s live: %d symbols", name, len(symbols))
        for sub in subs:
            live = self._sessions.get(sub.provider)
            if live is None or Interval(sub.interval) not in live.symbols.get(sub.symbol, ()):
                continue
            refused = live.session.refused.get(sub.symbol)
            if refused is None:
                await self._set_state(sub, "running", None)
            else:
                await self._set_state(sub, "error", f"{sub.provider} refused it: {refused}")

    # -- providers -------------------------------------------------------------------------

    async def _load(self, record: ProviderRecord) -> None:
        fingerprint = _fingerprint(record)
        failed = self._failed.get(record.name)
        if failed is not None and failed[0] == fingerprint:
            return  # same code and settings failed before: wait for the user to change them
        try:
            instance = await self.registry.load(record.name)
        except Exception as exc:
            detail = one_line(exc)
            self._failed[record.name] = (fingerprint, detail)
            log.error("provider %s failed to load: %s", record.name, detail)
            self.bus.publish(EngineError(f"provider:{record.name}", f"failed to load: {detail}"))
            self._note_provider(record.name, "error", detail)
            return
        self._failed.pop(record.name, None)
        self._providers[record.name] = _Loaded(fingerprint, instance)
        self._note_provider(record.name, "idle", None)
        log.info("provider %s loaded (%s)", record.name, record.kind)

    async def _unload(self, name: str) -> None:
        """Stop what uses the instance, then close it (its code or settings changed)."""
        await self._stop_session(name)
        for sid, sub in list(self._historical.items()):
            if sub.provider == name:
                self._interrupt(sid)
        loaded = self._providers.pop(name, None)
        self._provider_states.pop(name, None)
        if loaded is not None:
            try:
                await loaded.instance.aclose()
            except Exception as exc:
                log.warning("closing provider %s failed: %s", name, one_line(exc))

    def _note_provider(self, name: str, state: str, detail: str | None) -> None:
        self._provider_states[name] = {"state": state, "detail": detail}

    async def _sync_provider_status(self, records: dict[str, ProviderRecord]) -> None:
        """The registry's status column follows what the engine saw, as of each reconcile
        (consoles get the live state from events or the published stats)."""
        for name, seen in self._provider_states.items():
            record = records.get(name)
            if record is None:
                continue
            status = seen["state"] if seen["state"] in _DOWN else "ok"
            detail = seen["detail"] if status != "ok" else None
            if (record.status, record.status_detail) != (status, detail):
                await self._guard(self.registry.set_status(name, status, detail))

    # -- historical jobs -------------------------------------------------------------------

    def _interrupt(self, sub_id: int) -> None:
        """Cancel a running job on purpose (paused, deleted, provider reloading)."""
        task = self._jobs.get(sub_id)
        if task is not None:
            self._interrupted.add(sub_id)
            task.cancel()

    async def _historical_job(self, sub_id: int) -> None:
        sub = self._historical.get(sub_id)
        loaded = self._providers.get(sub.provider) if sub is not None else None
        if sub is None or loaded is None:
            return
        self._jobs[sub_id] = asyncio.current_task()  # type: ignore[assignment]
        try:
            await self._set_state(sub, "running", None)
            run = await run_historical(
                self.db, self.writer, self.bus, loaded.instance, sub, now=self.clock()
            )
        except asyncio.CancelledError:
            if self._running and sub_id not in self._interrupted:
                raise
            log.info(
                "historical %s: interrupted (%s)",
                _label(sub),
                "shutdown" if not self._running else "subscription or provider changed",
            )
            return
        except Exception as exc:
            message = one_line(exc)
            log.warning("historical %s failed: %s", _label(sub), message)
            self.bus.publish(EngineError(f"historical:{sub.provider}:{sub.symbol}", message))
            await self._set_state(sub, "error", message)
        else:
            state = "error" if run.status == "failed" else run.status
            await self._set_state(sub, state, run.error, ran_at=run.finished_at)
        finally:
            self._interrupted.discard(sub_id)
            if self._jobs.get(sub_id) is asyncio.current_task():
                del self._jobs[sub_id]

    # -- live sessions ---------------------------------------------------------------------

    async def _start_session(self, name: str, subs: list[SubscriptionRecord]) -> _Live:
        """A session that resumes each series after its last stored bar, or from its oldest
        span still waiting for a fill, whichever is older."""
        instance = self._providers[name].instance
        assert isinstance(instance, LiveDataProvider)
        gap_log = LiveGaps(self.db, name)
        session = LiveSession(
            name,
            instance,
            self.writer,
            self.bus,
            clock=self.clock,
            gap_log=gap_log,
            **self._live_options,
        )
        series = {
            (s.symbol, Interval(s.interval)): s.last_bar_ts
            for s in subs
            if s.provider == name and s.enabled
        }
        resume = {key: key[1].next_start(last) for key, last in series.items() if last is not None}
        for key, start in (await gap_log.open_starts()).items():
            if key in series:
                resume[key] = min(start, resume.get(key, start))
        session.resume_from(resume)
        symbols = {symbol for symbol, _ in series}
        if session.holes is not None:
            session.resume_ticks(await newest_stored(self.db, name, symbols))
        task = asyncio.create_task(self._supervise(name, session), name=f"engine:live:{name}")
        live = self._sessions[name] = _Live(session, task)
        if session.holes is not None:  # a scan of stored ticks: the session connects meanwhile
            for hole in await stored_holes(self.db, name, symbols):
                session.holes.found(*hole)
        return live

    async def _supervise(self, name: str, session: LiveSession) -> None:
        """A session reconnects by itself; this only reports one that ended by a bug."""
        try:
            await session.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"live session ended: {one_line(exc)}"
            log.exception("%s %s", name, message)
            self.bus.publish(EngineError(f"live:{name}", message))
            self._sessions.pop(name, None)  # the next periodic reconcile starts a new one

    async def _stop_session(self, name: str) -> None:
        live = self._sessions.pop(name, None)
        if live is None:
            return
        try:
            await live.session.stop()
        except Exception as exc:
            log.error("%s: stopping the live session failed: %s", name, one_line(exc))
        live.task.cancel()
        await asyncio.gather(live.task, return_exceptions=True)

    # -- states ----------------------------------------------------------------------------

    async def _set_state(
        self,
        sub: SubscriptionRecord,
        state: str,
        error: str | None,
        *,
        ran_at: datetime | None = None,
    ) -> None:
        """Write a subscription's state when it changed (or a run finished)."""
        known = self._states.get(sub.id, (sub.state, sub.last_error))
        if known == (state, error) and ran_at is None:
            return
        if await self._guard(self.subscriptions.set_state(sub.id, state, error, ran_at=ran_at)):
            self._states[sub.id] = (state, error)

    async def _guard(self, op: Any) -> bool:
        """A bookkeeping write: a database outage or a row deleted meanwhile is logged."""
        try:
            await op
        except _DB_ERRORS as exc:
            log.warning("engine bookkeeping write failed: %s", one_line(exc))
            return False
        except NotFoundError as exc:
            log.info("engine bookkeeping skipped: %s", exc)
            return False
        return True

    # -- change notifications and the control loop -----------------------------------------

    async def _listen(self) -> None:
        conn = await self.db.connect()
        await conn.add_listener(CHANGES_CHANNEL, self._on_notify)
        conn.add_termination_listener(lambda _conn: self._wake.set())
        self._listener = conn

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(BACKFILL_PREFIX):
            sid = payload.removeprefix(BACKFILL_PREFIX)
            if sid.isdigit() and self.backfill_now(int(sid)):
                return
        self._wake.set()

    async def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except _DB_ERRORS as exc:
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
            except _DB_ERRORS as exc:
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

    async def _housekeeping(self) -> None:
        """Tick retention, unless TimescaleDB's retention job is doing it (see store.timescale)."""
        await self._guard(prune_expired_ticks(self.db.pool, _TICK_RETENTION_DAYS, utc_now()))

    # -- publishing ------------------------------------------------------------------------

    async def _pump(self, subscription: Subscription) -> None:
        async for event in subscription:
            self._forward(event)

    def _forward(self, event: Event) -> None:
        publisher = self._publisher
        if publisher is None:
            return
        match event:
            case TickEvent():
                publisher.note_tick(event)
            case QuoteEvent():
                publisher.note_quote(event)
            case JobRun():
                level = {"ok": "info", "partial": "warning"}.get(event.status, "error")
                text = f"{event.symbol} {event.interval}: {event.status}, {event.rows} rows"
                publisher.note_event(
                    level, event.provider, text + (f" ({event.error})" if event.error else "")
                )
            case EngineError():
                publisher.note_event("error", event.source, event.message)
            case ProviderState(provider=name, state=state, detail=detail):
                if name in self._providers:
                    self._note_provider(name, state, detail)
                level = "warning" if state in _DOWN else "info"
                publisher.note_event(level, name, state + (f": {detail}" if detail else ""))

    def stats(self) -> dict[str, Any]:
        """What `engine_status.stats` carries for attached consoles and `quasar status`."""
        writers = self.writer.stats()
        return {
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "providers": dict(self._provider_states),
            "writers": writers,
            "rows_written": sum(int(w.get("rows_written", 0)) for w in writers.values()),
            "historical_jobs": self._scheduler.job_count,
            "running_jobs": len(self._jobs),
            "live_sessions": {n: len(live.symbols) for n, live in self._sessions.items()},
        }


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
