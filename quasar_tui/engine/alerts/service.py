"""The engine's alerts: rules loaded from the database, fed from the event bus, delivered.

It listens to what the engine publishes (trades per message, bars written, runs finished,
provider states) rather than sitting in the live path: the evaluator is called inside the
bus's `publish`, which costs less than a queue and a task switch per message, and trades are
only asked for while some rule needs them. What fires is kept in a bounded list that a task
records at once (`save`), in one transaction with the rule states that changed: an alert is in
the database with the state that made it fire, or neither is. So an engine killed at any point
never fires a crossing twice, nor forgets one it recorded: the deliverer, on start, delivers
what an earlier engine left pending (one killed before recording sees the crossing again on
the next trade beyond the level). Nothing on the live path waits. A second task, once a
second, checks silent feeds against their markets' calendars, reads new gap records, reloads
the rules after a user edit (`reload_soon`, wired to the rules table's notifications and to
mapping changes, which move rules on common symbols) and writes the states that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from quasar_tui.core.errors import QuasarError
from quasar_tui.core.messages import one_line
from quasar_tui.core.series import parse_series
from quasar_tui.engine.alerts.delivery import Deliverer, Firing
from quasar_tui.engine.alerts.evaluator import GAP_KEY, Evaluator, Target, series_key
from quasar_tui.engine.events import (
    AlertFired,
    BarsWritten,
    EngineError,
    Event,
    EventBus,
    JobRun,
    Listener,
    ProviderState,
    TradesRead,
)
from quasar_tui.engine.states import DB_ERRORS
from quasar_tui.quality.assigned import calendar_of
from quasar_tui.quality.calendars import Calendar
from quasar_tui.registry.alerts import AlertRule, AlertStore, FiredEvent, LiveSeries
from quasar_tui.store.series import resolve

log = logging.getLogger("quasar.alerts")

_VOLUME_QUEUE = 1000
FIRED_KEPT = 1000  # alerts fired and not yet recorded; beyond, they are dropped, loudly
_LOOK_EVERY = 30.0
HISTORY_KEPT = 10_000
_LOW_RATE = (JobRun, ProviderState, EngineError)

CalendarOf = Callable[[str, str, str], Awaitable[Calendar | None]]


class AlertService:
    """Evaluates the enabled rules on the engine's events; see the module docstring."""

    def __init__(
        self,
        store: AlertStore,
        bus: EventBus,
        clock: Callable[[], datetime],
        *,
        check_every: float = 1.0,
        gaps_every: float = 2.0,
        calendars: CalendarOf | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.check_every = check_every
        self.gaps_every = gaps_every
        self._calendar_of: CalendarOf = calendars or (
            lambda p, s, i: calendar_of(store.db, p, s, i)
        )
        self.deliverer = Deliverer(store, bus)
        self.evaluator = Evaluator([], {}, clock, self._fired)
        self.dropped = 0
        self._unrecorded: list[tuple[AlertFired, AlertRule | None]] = []
        self._firing = asyncio.Event()
        self._writing = asyncio.Lock()
        self._calendars: dict[str, Calendar | None] = {}
        self._gap_mark: int | None = None
        self._listeners: list[Listener] = []
        self._volumes: asyncio.Queue[BarsWritten] = asyncio.Queue(maxsize=_VOLUME_QUEUE)
        self._volumes_pending = 0
        self._reload = asyncio.Event()
        self._live: list[LiveSeries] = []
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.deliverer.start()
        await self.deliverer.resume()  # before anything fires here: those are all older
        await self.reload()
        self._tasks = [
            asyncio.create_task(self._every_second(), name="alerts:checks"),
            asyncio.create_task(self._judge_volumes(), name="alerts:volumes"),
            asyncio.create_task(self._record_fired(), name="alerts:record"),
        ]

    async def stop(self) -> None:
        """Evaluate what is queued, write the states, deliver what fired."""
        async with self._writing:  # a save under way ends first: none is cut in half
            for task in self._tasks:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for listener in self._listeners:
            self.bus.unsubscribe(listener)
        self._listeners = []
        try:
            await self.save()
        except DB_ERRORS as exc:
            log.warning("alerts: states not written at shutdown: %s", one_line(exc))
        await self.deliverer.stop()

    def idle(self) -> bool:
        """Nothing published is waiting to be evaluated, recorded or delivered (tests and
        benches)."""
        recording = self._unrecorded or self._writing.locked()
        return self._volumes_pending == 0 and not recording and self.deliverer.idle

    def reload_soon(self) -> None:
        """The rules changed: reload them at the next check (within a second)."""
        self._reload.set()

    def stats(self) -> dict[str, Any]:
        return {
            "rules": len(self.evaluator.rules),
            "alerts_dropped": self.dropped,
            "deliveries_ok": self.deliverer.delivered,
            "deliveries_failed": self.deliverer.failed,
        }

    # -- rules -----------------------------------------------------------------------------

    async def reload(self) -> None:
        """Build the evaluator from the enabled rules and their stored states. Nothing is
        saved meanwhile: states written after they were read here would be lost."""
        async with self._writing:
            await self._save()
            await self._rebuild()

    async def _rebuild(self) -> None:
        rules = await self.store.rules(enabled_only=True)
        live = self._live = await self.store.live_series()
        targets: list[tuple[AlertRule, Target]] = []
        for rule in rules:
            target = await self._target(rule, live)
            if target is not None:
                targets.append((rule, target))
        states = await self.store.states([r.id for r, _ in targets])
        evaluator = Evaluator(targets, states, self.clock, self._fired)
        await self._watch_silence(evaluator, {r.id: t for r, t in targets}, live)
        await self._mark_gaps(evaluator)
        evaluator.adopt(self.evaluator.take_dirty())  # what changed while this was loading
        evaluator.carry_windows(self.evaluator)
        self.evaluator = evaluator
        self._listen(evaluator)
        log.info("alerts: %d rule(s) active", len(evaluator.rules))

    async def _target(self, rule: AlertRule, live: list[LiveSeries]) -> Target | None:
        """The key a rule watches; a common symbol means its first series in the provider
        order that is collected live (else its first series). None: it names nothing now."""
        if rule.target is None or rule.kind == "provider":
            return Target(rule.target)
        try:
            name = parse_series(rule.target)
            if name.provider is not None:
                return Target(series_key(name.provider, name.symbol))
            found = await resolve(self.store.db, name)
        except QuasarError as exc:
            log.warning("alert rule %d watches nothing for now: %s", rule.id, one_line(exc))
            return None
        collected = {(s.provider, s.symbol) for s in live}
        best = next((s for s in found if (s.provider, s.symbol) in collected), found[0])
        return Target(best.key)

    async def _watch_silence(
        self, evaluator: Evaluator, targets: dict[int, Target], live: list[LiveSeries]
    ) -> None:
        """Stale rules watch their series, or every live series; calendars are looked up once."""
        intervals: dict[str, str] = {}
        for s in live:
            intervals.setdefault(series_key(s.provider, s.symbol), s.interval)
        now = self.clock().timestamp()
        self._calendars = {}
        for rule in evaluator.rules_of("stale"):
            key = targets[rule.id].key
            for series in [key] if key is not None else list(intervals):
                evaluator.add_stale(rule, series, now)
                if series not in self._calendars:
                    provider, _, symbol = series.partition(":")
                    interval = intervals.get(series, "1min")
                    self._calendars[series] = await self._calendar_of(provider, symbol, interval)

    async def _mark_gaps(self, evaluator: Evaluator) -> None:
        """A new gap rule starts from the newest gap recorded now; older ones are not news."""
        marks = []
        for rule in evaluator.rules_of("gap"):
            state = evaluator.state(rule.id, GAP_KEY)
            if state.mark is None:
                state.mark = await self.store.last_gap()
                evaluator.dirty.add((rule.id, GAP_KEY))
            marks.append(state.mark)
        self._gap_mark = min(marks) if marks else None

    def _listen(self, evaluator: Evaluator) -> None:
        """Ask the bus for what the rules need, from now on."""
        kinds: tuple[type, ...] = _LOW_RATE
        if evaluator.rules_of("volume"):
            kinds += (BarsWritten,)
        for listener in self._listeners:
            self.bus.unsubscribe(listener)
        self._listeners = [self.bus.listen(kinds, self._handle)]
        if evaluator.wants_trades:  # every message of trades: straight to the evaluator
            self._listeners.append(self.bus.listen((TradesRead,), evaluator.on_trades))

    # -- events ----------------------------------------------------------------------------

    def _fired(self, alert: AlertFired) -> None:
        """The evaluator's sink (on the live path): keep it for `save`, wake the recorder."""
        if len(self._unrecorded) >= FIRED_KEPT:
            self.dropped += 1
            log.error("alerts are not recorded fast enough; dropped: %s", alert.message)
            return
        self._unrecorded.append((alert, self.evaluator.rules.get(alert.rule_id)))
        self._firing.set()

    def _handle(self, event: Event) -> None:
        evaluator = self.evaluator
        match event:
            case ProviderState():
                evaluator.on_provider_state(event.provider, event.state, event.detail)
            case EngineError() if event.source.startswith("provider:"):
                name = event.source.removeprefix("provider:")
                evaluator.on_provider_state(name, "error", event.message)
            case JobRun():
                evaluator.on_job_run(event)
            case BarsWritten() if event.table == "live_data":
                if evaluator.volume_rules(event.provider, event.symbol, event.interval):
                    self._queue_volume(event)

    def _queue_volume(self, event: BarsWritten) -> None:
        try:
            self._volumes.put_nowait(event)
            self._volumes_pending += 1
        except asyncio.QueueFull:
            log.warning("alerts: volume checks are behind; skipped %s", event.symbol)

    async def _judge_volumes(self) -> None:
        while True:
            event = await self._volumes.get()
            try:
                await self._judge_volume(event)
            finally:
                self._volumes_pending -= 1

    async def _judge_volume(self, event: BarsWritten) -> None:
        key = series_key(event.provider, event.symbol)
        for rule in self.evaluator.volume_rules(event.provider, event.symbol, event.interval):
            count = int(rule.bars or 0)
            try:
                bars = await self.store.recent_volumes(
                    event.provider, event.symbol, str(event.interval), event.last_ts, count + 1
                )
            except DB_ERRORS as exc:
                log.info("alerts: cannot read bars for a volume rule: %s", one_line(exc))
                continue
            if len(bars) < count + 1:
                continue  # not enough history yet for an average
            (ts, volume), before = bars[0], bars[1:]
            average = sum(v for _, v in before) / len(before)
            self.evaluator.on_volume(rule, key, ts, volume, average)

    # -- once a second ---------------------------------------------------------------------

    async def _every_second(self) -> None:
        loop = asyncio.get_running_loop()
        next_gaps = loop.time()
        next_look = loop.time() + _LOOK_EVERY
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload.wait(), self.check_every)
            try:
                if loop.time() >= next_look:  # now and then: what rules watch may have moved
                    next_look = loop.time() + _LOOK_EVERY
                    await self.look_around()
                if self._reload.is_set():
                    self._reload.clear()
                    await self.reload()
                self.check_silence()
                if self._gap_mark is not None and loop.time() >= next_gaps:
                    next_gaps = loop.time() + self.gaps_every
                    await self.check_gaps()
                await self.save()
            except DB_ERRORS as exc:
                log.info("alerts: database unavailable (will retry): %s", one_line(exc))

    async def look_around(self) -> None:
        """Reload when the live series changed (stale rules on all series, common symbols
        now served by another feed), and keep the newest `HISTORY_KEPT` alerts."""
        if await self.store.live_series() != self._live:
            self.reload_soon()
        await self.store.trim_history(HISTORY_KEPT)

    def check_silence(self) -> None:
        now = self.clock()
        open_by_calendar: dict[int, bool] = {}

        def open_now(key: str) -> bool:
            cal = self._calendars.get(key)
            if cal is None:
                return True
            known = open_by_calendar.get(id(cal))
            if known is None:
                known = open_by_calendar[id(cal)] = cal.is_open(now)
            return known

        self.evaluator.on_stale_check(open_now)

    async def check_gaps(self) -> None:
        if self._gap_mark is None:
            return
        gaps = await self.store.gaps_after(self._gap_mark)
        if gaps:
            self._gap_mark = gaps[-1].id
            self.evaluator.on_gaps(gaps)

    async def _record_fired(self) -> None:
        while True:
            await self._firing.wait()
            self._firing.clear()
            try:
                await self.save()
            except DB_ERRORS as exc:
                log.warning("alerts delivered but not recorded: %s", one_line(exc))
            except Exception:  # a bug must not end recording
                log.exception("alerts delivered but not recorded")

    async def save(self) -> None:
        """Record what fired with the states that changed, in one transaction, then hand the
        alerts to the deliverer. When the database is away they are delivered unrecorded
        and the states kept for the next try (an engine killed before that may fire again:
        at least once)."""
        async with self._writing:
            await self._save()

    async def _save(self) -> None:
        fired, self._unrecorded = self._unrecorded, []
        dirty = self.evaluator.take_dirty()
        if not fired and not dirty:
            return
        events = [_event(alert, rule) for alert, rule in fired]
        try:
            recorded = await self.store.record(events, dirty)
        except Exception:  # the database is away (or a bug): deliver them all the same
            self.evaluator.dirty.update(dirty)
            self._hand_over(fired, events, [None] * len(events))
            raise
        except BaseException:  # cancelled: all of it is for the next save
            self.evaluator.dirty.update(dirty)
            self._unrecorded[:0] = fired
            raise
        self._hand_over(fired, events, recorded)

    def _hand_over(
        self,
        fired: list[tuple[AlertFired, AlertRule | None]],
        events: list[FiredEvent],
        recorded: Sequence[int | None],
    ) -> None:
        for (alert, rule), event, event_id in zip(fired, events, recorded, strict=True):
            self.deliverer.offer(Firing(alert, rule, event_id, event.pending))


def _event(alert: AlertFired, rule: AlertRule | None) -> FiredEvent:
    channels = tuple(rule.channels) if rule is not None else ("log", "console")
    return FiredEvent(
        alert.rule_id, alert.kind, alert.key, alert.message, alert.details, alert.at, channels
    )
