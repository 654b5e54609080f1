"""One supervisor per live provider connection.

The session connects through the provider's `_connect()`, sends what `_subscribe` returns for its
subscription set (engine/live_subscriptions.py), reads messages and hands what
`_parse_message` makes of them to its router (engine/live_router.py). It owns the heartbeat,
an idle watchdog, reconnection forever with capped jittered backoff (reset once a connection
has been healthy for a while) and the replay of subscriptions.

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
import json
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from quasar_tui.core.clock import Clock, utc_now
from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.engine.aggregator import BarAggregator, Gap
from quasar_tui.engine.backoff import Backoff
from quasar_tui.engine.bar_timer import BarTimer, FeedClock
from quasar_tui.engine.events import EngineError, EventBus, ProviderState, ProviderStateName
from quasar_tui.engine.gap_filler import Backfill, GapFiller, rest_backfill
from quasar_tui.engine.live_gaps import LiveGaps
from quasar_tui.engine.live_router import RecordRouter, SessionStats
from quasar_tui.engine.live_subscriptions import SubscriptionSet
from quasar_tui.engine.tick_holes import TickHoles
from quasar_tui.engine.trade_ids import TradeIds
from quasar_tui.engine.writer import Writer
from quasar_tui.sdk.abilities import HistorySource, TradeSource
from quasar_tui.sdk.base import LiveDataProvider
from quasar_tui.sdk.models import SubscriptionRefused

__all__ = ["Backfill", "LiveSession", "rest_backfill"]

log = logging.getLogger("quasar.engine.live")

READ_SLICE = 0.005  # seconds the reader may keep the event loop before letting others run
CONNECT_TIMEOUT = 15.0
ERROR_THROTTLE = 5.0  # seconds between bus reports of undecodable messages


class IdleTimeout(ConnectionError):
    """The feed said nothing, not even a heartbeat, for longer than the provider allows."""


def _encode(messages: Any) -> list[str | bytes]:
    """What `_subscribe` and friends return (dict, str, bytes or a list of them) as frames."""
    if messages is None:
        return []
    if isinstance(messages, list | tuple):
        return [frame for m in messages for frame in _encode(m)]
    if isinstance(messages, str | bytes):
        return [messages]
    return [json.dumps(messages)]


class LiveSession:
    """Supervises one provider connection. Run `run()` in a task of its own; `stop()` (from
    another task) cancels it and writes the bars that are due."""

    def __init__(
        self,
        provider_name: str,
        provider: LiveDataProvider,
        writer: Writer,
        bus: EventBus,
        *,
        backfill: Backfill | None = None,
        store_ticks: bool = True,
        clock: Clock = utc_now,
        grace: float = 1.0,
        subscribe_margin: float = 1.0,
        healthy_after: float = 30.0,
        backoff: Backoff | None = None,
        gap_log: LiveGaps | None = None,
    ) -> None:
        """`backfill` defaults to `rest_backfill` when the provider has `get_history`.
        `clock` is injectable so tests can run market time fast; `subscribe_margin` is how long
        after sending a subscription its stream is trusted to be complete. With `gap_log`,
        spans waiting for a fill are recorded before any later bar is written (see
        engine/live_gaps.py), so the next session can fill them if this one cannot."""
        self.name = provider_name
        self.provider = provider
        self.writer = writer
        self.bus = bus
        self.clock = clock
        self.subscribe_margin = subscribe_margin
        self.healthy_after = healthy_after
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        if backfill is None and isinstance(provider, HistorySource):
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
        self.holes = (
            TickHoles(provider_name, provider, writer, bus)
            if store_ticks and provider.fills_trades and isinstance(provider, TradeSource)
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
        self._conn: Any = None
        self._observing = False
        self._last_message = clock()
        self._last_message_mono = time.monotonic()
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
            if self._conn is None or not self._observing:
                return
            if change.gone:
                await self._send(await self.provider._unsubscribe(change.gone))
            await self._subscribe(change.added)

    def _follow_active(self) -> None:
        """The aggregator and the gap filler keep only the active series."""
        active = self.subscriptions.active()
        self.aggregator.set_intervals(active)
        if self.filler is not None:
            self.filler.keep(lambda key: key[1] in active.get(key[0], ()))

    async def _subscribe(self, keys: list[tuple[str, Interval]]) -> None:
        """Send subscriptions for these series (grouped by interval) and start observing them."""
        by_interval: dict[Interval, list[str]] = {}
        for sym, iv in keys:
            by_interval.setdefault(iv, []).append(sym)
        for iv, symbols in sorted(by_interval.items(), key=lambda kv: kv[0].seconds):
            await self._send(await self.provider._subscribe(iv, symbols))
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

    async def _send(self, messages: Any) -> None:
        conn = self._conn
        if conn is None:
            return
        for frame in _encode(messages):
            await conn.send(frame)

    # -- the supervisor --------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream, reconnect; forever, until cancelled or `stop()`."""
        self._task = asyncio.current_task()
        timer = asyncio.create_task(self.timer.run(), name=f"live:{self.name}:timer")
        try:
            while True:
                started = time.monotonic()
                connected = False
                try:
                    connected = await self._connect()
                    await self._stream()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._lost(exc, connected)
                finally:
                    await self._close()
                if connected and time.monotonic() - started >= self.healthy_after:
                    self.backoff.reset()
                await asyncio.sleep(self.backoff.next())
        finally:
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)
            if self.filler is not None:
                await self.filler.close()
            if self.holes is not None:
                await self.holes.close()
            self._set_state("idle")

    async def _connect(self) -> bool:
        self._set_state("connecting")
        self._conn = await asyncio.wait_for(self.provider._connect(), CONNECT_TIMEOUT)
        self.stats.connects += 1
        self._touch()
        async with self._sub_lock:
            await self._subscribe(self.subscriptions.series())
            self._observing = True
        self._set_state("connected")
        return True

    def _touch(self) -> None:
        self._last_message = self.clock()
        self._last_message_mono = time.monotonic()

    async def _stream(self) -> None:
        """Read until the connection fails; the watchdog and heartbeat run alongside."""
        tasks = [
            asyncio.create_task(self._read(), name=f"live:{self.name}:read"),
            asyncio.create_task(self._watchdog(), name=f"live:{self.name}:watchdog"),
            asyncio.create_task(self._heartbeat(), name=f"live:{self.name}:heartbeat"),
        ]
        heartbeat, pending = tasks[2], set(tasks)
        try:
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # raises what ended the reader, watchdog or heartbeat
                    if task is not heartbeat:  # a provider without heartbeat returns at once
                        raise ConnectionError("the feed closed the connection")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self) -> None:
        """Messages the socket already holds are handed over without a suspension, so on a
        busy feed this would keep the loop for as long as data keeps coming: it lets the
        writer, the bar timer and the rest run every READ_SLICE seconds."""
        conn, parse, route = self._conn, self.provider._parse_message, self.router.route
        feed_clock = self.feed_clock
        pause_at = time.monotonic() + READ_SLICE
        async for message in conn:
            self._touch()
            self.stats.messages += 1
            try:
                records = await parse(message)
            except Exception as exc:
                self._bad_message(exc)
                continue
            if records and await route(records):
                feed_clock.heard = self._last_message
            if self._last_message_mono >= pause_at:
                await asyncio.sleep(0)
                pause_at = time.monotonic() + READ_SLICE

    async def _watchdog(self) -> None:
        idle = float(self.provider.IDLE_TIMEOUT)
        while True:
            silent = time.monotonic() - self._last_message_mono
            if silent > idle:
                self.stats.idle_timeouts += 1
                raise IdleTimeout(f"no message for {idle:g} s")
            await asyncio.sleep(min(1.0, idle - silent + 0.01))

    async def _heartbeat(self) -> None:
        every = float(self.provider.HEARTBEAT_INTERVAL)
        while True:
            await asyncio.sleep(every)
            message = await self.provider._heartbeat()
            if message is None:
                return
            await self._send(message)

    def _lost(self, exc: Exception, connected: bool) -> None:
        reason = one_line(exc)
        if connected:
            message = f"{self.name} connection lost: {reason}; reconnecting"
            self._set_state("disconnected", reason)
        else:
            message = f"{self.name} cannot connect: {reason}; retrying"
            self._set_state("error", reason)
        log.warning("%s", message)
        self.bus.publish(EngineError(f"live:{self.name}", message))

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if self._observing:
            self._observing = False
            # what was read, by the feed's time: a backlog never read is not in the bars
            self.aggregator.interrupt(min(self._last_message, self.feed_clock.now_datetime()))
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except Exception as exc:  # the connection is gone either way; say why
                log.info("%s: closing the connection failed: %s", self.name, one_line(exc))

    def _set_state(self, state: ProviderStateName, detail: str | None = None) -> None:
        if state != self.state or detail:
            self.state = state
            self.bus.publish(ProviderState(self.name, state, detail))

    def _bad_message(self, exc: Exception) -> None:
        self.stats.bad_messages += 1
        now = time.monotonic()
        if now - self._last_bad_report >= ERROR_THROTTLE:
            self._last_bad_report = now
            message = (
                f"{self.name} sent a message that could not be read "
                f"({self.stats.bad_messages} so far): {one_line(exc)}"
            )
            log.warning("%s", message)
            self.bus.publish(EngineError(f"live:{self.name}", message))

    # -- shutdown --------------------------------------------------------------------------

    async def stop(self) -> None:
        """Close the socket and write the bars that are due; open bars are dropped (partial)."""
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task])
        await self.timer.write_final()
