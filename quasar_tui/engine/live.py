"""One supervisor per live provider feed.

The connection loop itself (connect, subscribe, read, heartbeat, idle watchdog, reconnect with
capped jittered backoff, resubscribe) is `sandbox.feed.LiveFeed`, run in the provider's host
(`sandbox.hosted.HostedProvider`), or in this process for an instance the caller made
(`sandbox.feed.LocalFeed`: tests, the in-process side of bench.live). The session gives it the
subscription set (engine/live_subscriptions.py) and hands the batches of records it sends back
to its router (engine/live_router.py); its state changes say when each series is observed.

Nothing partial reaches `live_data`: the bar timer (engine/bar_timer.py) writes only closed
bars. A bar that was open when the feed stopped, or that began before the feed was subscribed,
is dropped by the aggregator and its span is filled from the provider's REST history
(engine/gap_filler.py). Trades a snapshot brings that were never delivered are kept, even when
they are older than the newest one seen (engine/trade_ids.py). For a provider with sequential
trade ids, trades it never received at all are fetched from its REST trades
(engine/tick_holes.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from quasar_tui.core.backoff import Backoff
from quasar_tui.core.clock import Clock, utc_now
from quasar_tui.core.intervals import Interval
from quasar_tui.core.time_slice import TimeSlice
from quasar_tui.engine.aggregator import BarAggregator, Gap
from quasar_tui.engine.bar_timer import BarTimer, FeedClock
from quasar_tui.engine.events import EngineError, EventBus, ProviderState, ProviderStateName
from quasar_tui.engine.gap_filler import Backfill, GapFiller, rest_backfill
from quasar_tui.engine.live_gaps import LiveGaps
from quasar_tui.engine.live_router import RecordRouter, SessionStats
from quasar_tui.engine.live_subscriptions import SubscriptionSet
from quasar_tui.engine.tick_holes import TickHoles, always
from quasar_tui.engine.trade_ids import TradeIds
from quasar_tui.engine.writer import Writer
from quasar_tui.sandbox.feed import HEALTHY_AFTER, LocalFeed
from quasar_tui.sandbox.hosted import HostedProvider
from quasar_tui.sandbox.protocol import Live, State
from quasar_tui.sdk.abilities import HistorySource, TradeSource
from quasar_tui.sdk.base import LiveDataProvider
from quasar_tui.sdk.models import SubscriptionRefused

__all__ = ["Backfill", "LiveSession", "rest_backfill"]

ROUTE_SLICE = 0.005  # seconds of routing before the writer's COPY gets a turn of the loop

log = logging.getLogger("quasar.engine.live")

ERROR_THROTTLE = 5.0  # seconds between bus reports of undecodable messages
_DOWN = ("disconnected", "error", "exited", "parked")


class LiveSource(Protocol):
    """Where a session's records come from: a `HostedProvider` or a `LocalFeed`."""

    async def set_subscriptions(self, subs: dict[str, list[Interval]]) -> None: ...
    async def observing(self) -> None: ...
    def events(self) -> AsyncIterator[Live | State]: ...
    async def close(self) -> None: ...


class LiveSession:
    """Supervises one provider connection. Run `run()` in a task of its own; `stop()` (from
    another task) cancels it and writes the bars that are due."""

    def __init__(
        self,
        provider_name: str,
        provider: LiveDataProvider | HostedProvider,
        writer: Writer,
        bus: EventBus,
        *,
        backfill: Backfill | None = None,
        store_ticks: bool = True,
        clock: Clock = utc_now,
        grace: float = 1.0,
        subscribe_margin: float = 1.0,
        healthy_after: float = HEALTHY_AFTER,
        backoff: Backoff | None = None,
        gap_log: LiveGaps | None = None,
    ) -> None:
        """`backfill` defaults to `rest_backfill` when the provider has `get_history`.
        `clock` is injectable so tests can run market time fast; `subscribe_margin` is how long
        after sending a subscription its stream is trusted to be complete. `backoff` and
        `healthy_after` are the reconnection's for a provider instance run here (a host
        reconnects with its own). With `gap_log`,
        spans waiting for a fill are recorded before any later bar is written (see
        engine/live_gaps.py), so the next session can fill them if this one cannot."""
        self.name = provider_name
        self.provider = provider
        self.writer = writer
        self.bus = bus
        self.clock = clock
        self.subscribe_margin = subscribe_margin
        self.source: LiveSource = (
            provider
            if isinstance(provider, HostedProvider)
            else LocalFeed(provider, backoff=backoff, healthy_after=healthy_after)
        )
        if backfill is None and isinstance(provider, HistorySource) and provider.has_history:
            backfill = partial(rest_backfill, provider, writer, provider_name)
        self.aggregator = BarAggregator(
            provider_name,
            {},
            grace,
            closed_candles=provider.BARS_HAVE_CLOSE_FLAG,
            correct_late=store_ticks,
        )
        self.stats = SessionStats()
        self.state = "idle"
        self.subscriptions = SubscriptionSet()
        available = provider.available if isinstance(provider, HostedProvider) else always
        self.holes = (
            TickHoles(provider_name, provider, writer, bus, available)
            if store_ticks and isinstance(provider, TradeSource) and provider.fills_trades
            else None
        )
        self.filler = (
            None
            if backfill is None
            else GapFiller(
                provider_name,
                backfill,
                writer,
                bus,
                clock=clock,
                grace=grace,
                gap_log=gap_log,
                stats=self.stats,
                available=available,
            )
        )
        self._trade_ids = TradeIds(on_skip=self.holes.found if self.holes else None)
        self.router = RecordRouter(
            provider_name,
            self.subscriptions,
            self._trade_ids,
            self.aggregator,
            writer,
            bus,
            self.stats,
            store_ticks=store_ticks,
            on_refused=self._refuse,
        )
        self.feed_clock = FeedClock(
            self.aggregator, clock, grace, lambda: self.router.waiting_for_room
        )
        self.timer = BarTimer(
            provider_name,
            self.aggregator,
            writer,
            bus,
            feed_clock=self.feed_clock,
            filler=self.filler,
            holes=self.holes,
        )
        self._resume: dict[tuple[str, Interval], datetime] = {}
        self._observing = False
        self._last_message = clock()
        self._last_bad_report = 0.0
        self._sub_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def counters(self) -> dict[str, int]:
        """The session's counters with the bars' (late trades dropped or corrected, bars
        rebuilt, trades left to the history fill, partial bars dropped), for `Engine.stats()`."""
        agg = self.aggregator.stats
        return {
            **dataclasses.asdict(self.stats),
            "late_dropped": agg.late_dropped,
            "late_corrected": agg.late_corrected,
            "history_filled": agg.history_filled,
            "bars_corrected": self.timer.bars_corrected,
            "partial_dropped": agg.partial_dropped,
        }

    @property
    def refused(self) -> dict[str, str]:
        """Symbol -> the provider's reason, for the symbols it refused."""
        return self.subscriptions.refused

    # -- subscriptions ---------------------------------------------------------------------

    def resume_from(self, points: Mapping[tuple[str, Interval], datetime]) -> None:
        """Where each series' stored live bars end (e.g. after a restart); the first
        connection then also fills from there, not just the bar it joins mid-way."""
        self._resume.update({(s, Interval(i)): ts for (s, i), ts in points.items()})

    def resume_ticks(self, newest: Mapping[str, tuple[int, datetime]]) -> None:
        """Symbol -> (trade id, time) of its newest stored tick: with sequential trade ids,
        the trades made since are fetched once the feed shows how far they go."""
        for symbol, (trade_id, ts) in newest.items():
            self._trade_ids.seed(symbol, trade_id, ts)

    async def set_subscriptions(self, subs: Mapping[str, Iterable[Interval | str]]) -> None:
        """Symbol -> intervals wanted. Changes go out on the live connection at once and the
        whole set is replayed on every reconnect. A refused symbol is retried only when it is
        added again."""
        async with self._sub_lock:
            change = self.subscriptions.replace(subs)
            self._trade_ids.forget(change.gone)
            if self.holes is not None:
                self.holes.drop(change.gone)
            self._follow_active()
            active = self.subscriptions.active()
            await self.source.set_subscriptions({s: sorted(ivs) for s, ivs in active.items()})
            if self._observing:
                self._observe(change.added)

    def _follow_active(self) -> None:
        """The aggregator and the gap filler keep only the active series."""
        active = self.subscriptions.active()
        self.aggregator.set_intervals(active)
        if self.filler is not None:
            self.filler.keep(lambda key: key[1] in active.get(key[0], ()))

    def _observe(self, keys: list[tuple[str, Interval]]) -> None:
        """The feed has subscribed these series: observe them from a margin from now."""
        for key in keys:
            if key in self._resume:
                self.aggregator.mark_missing(*key, self._resume.pop(key))
        at = self.clock() + timedelta(seconds=self.subscribe_margin)
        self._queue_gaps(self.aggregator.observe_from(at, keys))

    def _queue_gaps(self, gaps: list[Gap]) -> None:
        if self.filler is not None:
            self.filler.queue(gaps)
            return
        for gap in gaps:
            log.info(
                "%s %s %s: %s..%s not observed and no history to fill it",
                self.name,
                gap.symbol,
                gap.interval,
                gap.start,
                gap.end,
            )

    def _refuse(self, refusal: SubscriptionRefused) -> None:
        if not self.subscriptions.refuse(refusal.symbol, refusal.reason):
            return
        self._follow_active()
        message = f"{self.name} refused {refusal.symbol}: {refusal.reason}"
        log.warning("%s", message)
        self.bus.publish(EngineError(f"live:{self.name}:{refusal.symbol}", message))

    # -- the supervisor --------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the feed until cancelled or `stop()`."""
        self._task = asyncio.current_task()
        timer = asyncio.create_task(self.timer.run(), name=f"live:{self.name}:timer")
        try:
            routing = TimeSlice(ROUTE_SLICE)
            async for event in self.source.events():
                if type(event) is Live:
                    await self._take(event)
                    if routing.due():
                        await asyncio.sleep(0)
                elif isinstance(event, State):
                    await self._follow(event)
        finally:
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)
            if self.filler is not None:
                await self.filler.close()
            if self.holes is not None:
                await self.holes.close()
            self._set_state("idle")

    async def _take(self, batch: Live) -> None:
        """One batch of what the feed parsed, in the order it was parsed within each kind."""
        self._last_message = self.clock()
        self.stats.messages += batch.messages
        route = self.router.route
        heard = await route(batch.ticks) if batch.ticks else False
        for records in (batch.quotes, batch.bars, batch.refused):
            if records:
                heard = await route(records) or heard
        if heard:
            self.feed_clock.heard = self._last_message

    async def _follow(self, event: State) -> None:
        """A state change of the feed, or of the host running it."""
        state = event.state
        if state == "connecting":
            self._set_state("connecting")
        elif state == "connected":
            self.stats.connects += 1
            self._last_message = self.clock()
            async with self._sub_lock:
                self._observe(self.subscriptions.series())
                self._observing = True
            await self.source.observing()
            self._set_state("connected")
        elif state in _DOWN:
            self.stats.idle_timeouts += event.idle_timeout
            self._interrupt()
            self._lost(state, event.detail or state)
        elif state == "bad-message":
            self._bad_message(event.detail or "")
        elif state == "closing":
            log.info("%s: %s", self.name, event.detail)

    def _lost(self, state: str, reason: str) -> None:
        if state == "disconnected":
            message = f"{self.name} connection lost: {reason}; reconnecting"
            self._set_state("disconnected", reason)
        elif state == "error":
            message = f"{self.name} cannot connect: {reason}; retrying"
            self._set_state("error", reason)
        elif state == "exited":
            message = f"{reason}; restarting it"
            self._set_state("error", reason)
        else:
            message = f"{self.name} is parked: {reason}"
            self._set_state("error", f"parked: {reason}")
        log.warning("%s", message)
        self.bus.publish(EngineError(f"live:{self.name}", message))

    def _interrupt(self) -> None:
        """The feed stopped: what was read, by the feed's time, is all the bars have (a
        backlog never read is not in them)."""
        if self._observing:
            self._observing = False
            self.aggregator.interrupt(min(self._last_message, self.feed_clock.now_datetime()))

    def _set_state(self, state: ProviderStateName, detail: str | None = None) -> None:
        if state != self.state or detail:
            self.state = state
            self.bus.publish(ProviderState(self.name, state, detail))

    def _bad_message(self, reason: str) -> None:
        self.stats.bad_messages += 1
        now = time.monotonic()
        if now - self._last_bad_report >= ERROR_THROTTLE:
            self._last_bad_report = now
            message = (
                f"{self.name} sent a message that could not be read "
                f"({self.stats.bad_messages} so far): {reason}"
            )
            log.warning("%s", message)
            self.bus.publish(EngineError(f"live:{self.name}", message))

    # -- shutdown --------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop the feed and write the bars that are due; open bars are dropped (partial)."""
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task])
        await self.source.close()
        await self.timer.write_final()
