"""One supervisor per live provider connection.

The session connects through the provider's `_connect()`, sends what `_subscribe` returns, reads
messages and routes what `_parse_message` makes of them: ticks to `live_ticks`, the aggregator
and the bus; quotes to the bus only; candles to the aggregator. It owns the heartbeat, an idle
watchdog, reconnection forever with capped jittered backoff (reset once a connection has been
healthy for a while) and the replay of subscriptions.

Nothing partial reaches `live_data`. A bar that was open when the feed stopped, or that began
before the feed was subscribed, is dropped by the aggregator and its span is filled from the
provider's REST history (`backfill`) once the span has closed; with a gap log the span is on
record until then, so an engine stopped or killed first has the next one fill it. Ticks
re-delivered after a reconnect are recognised by trade id and not counted twice; trades a
snapshot brings that were never delivered are kept, even when they are older than the newest
one seen (engine/trade_ids.py). For a provider with sequential trade ids, trades it never
received at all are fetched from its REST trades (engine/tick_holes.py).

`live_ticks.seq` is the provider's trade id when it has one; otherwise a counter that starts at
the session's creation time in nanoseconds, so it never repeats across restarts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from quasar_tui.core.clock import Clock, utc_now
from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import describe_error
from quasar_tui.engine.aggregator import BarAggregator, Gap
from quasar_tui.engine.backoff import Backoff
from quasar_tui.engine.events import (
    EngineError,
    EventBus,
    JobRun,
    ProviderState,
    QuoteEvent,
    TickEvent,
)
from quasar_tui.engine.live_gaps import LiveGaps
from quasar_tui.engine.tick_holes import ATTEMPTS, RETRY, TickHoles
from quasar_tui.engine.trade_ids import TradeIds
from quasar_tui.engine.writer import OUTAGE_ERRORS, Writer
from quasar_tui.sdk.base import LiveDataProvider
from quasar_tui.sdk.models import Bar, Quote, SubscriptionRefused, Tick
from quasar_tui.store.tables import LiveBarRow, TickRow

log = logging.getLogger("quasar.engine.live")

Backfill = Callable[[str, str, datetime, datetime], Awaitable[Any]]

FLUSH_INTERVAL = 0.1  # how often closed bars are looked for: bounds their delay past the grace
READ_SLICE = 0.005  # seconds the reader may keep the event loop before letting others run
CONNECT_TIMEOUT = 15.0
ERROR_THROTTLE = 5.0  # seconds between bus reports of undecodable messages


class IdleTimeout(ConnectionError):
    """The feed said nothing, not even a heartbeat, for longer than the provider allows."""


@dataclass
class SessionStats:
    connects: int = 0
    messages: int = 0
    ticks: int = 0
    duplicates: int = 0
    quotes: int = 0
    bad_messages: int = 0
    idle_timeouts: int = 0
    backfills: int = 0
    backfill_failures: int = 0


@dataclass
class _PendingGap:
    start: datetime
    end: datetime
    attempts: int = 0
    not_before: datetime | None = None


async def rest_backfill(
    provider: LiveDataProvider,
    writer: Writer,
    provider_name: str,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
) -> int:
    """Write the provider's closed bars in [start, end) to live_data; return how many.

    The writer merges them with ON CONFLICT since they lie before the newest live bars. Candles
    that say they hold no trades are skipped: live bars only exist where trades happened.
    """
    iv = Interval(interval)
    rows = [
        LiveBarRow(
            provider_name,
            symbol,
            iv.value,
            bar.ts,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            bar.trades or 0,
        )
        async for bar in provider.get_history(symbol, start, end, iv)
        if start <= bar.ts < end and bar.trades != 0
    ]
    if rows:
        await writer.put_bars("live_data", rows)
    return len(rows)


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
        self.store_ticks = store_ticks
        self.clock = clock
        self.grace = grace
        self.subscribe_margin = subscribe_margin
        self.healthy_after = healthy_after
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        if backfill is None and provider.has_history:
            backfill = self._rest_backfill
        self._backfill = backfill
        self.aggregator = BarAggregator(
            provider_name, {}, grace, closed_candles=provider.BARS_HAVE_CLOSE_FLAG
        )
        self.stats = SessionStats()
        self.state = "idle"
        self.refused: dict[str, str] = {}
        self._subs: dict[str, set[Interval]] = {}
        self._resume: dict[tuple[str, Interval], datetime] = {}
        self._gaps: dict[tuple[str, Interval], _PendingGap] = {}
        self.holes = (
            TickHoles(provider_name, provider, writer, bus)
            if store_ticks and provider.fills_trades
            else None
        )
        self._trade_ids = TradeIds(on_skip=self.holes.found if self.holes else None)
        self._seq = time.time_ns()
        self._conn: Any = None
        self._observing = False
        self._last_message = clock()
        self._last_message_mono = time.monotonic()
        self._last_bad_report = 0.0
        self._sub_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._backfill_task: asyncio.Task[None] | None = None
        self._gap_log = gap_log
        self._unrecorded: list[Gap] = []
        self._gap_log_down = False
        self._recording = asyncio.Lock()  # the bar timer and the gap filler both record

    # -- subscriptions ---------------------------------------------------------------------

    def _active(self) -> dict[str, set[Interval]]:
        return {s: ivs for s, ivs in self._subs.items() if s not in self.refused}

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
        wanted = {sym: {Interval(i) for i in ivs} for sym, ivs in subs.items()}
        wanted = {sym: ivs for sym, ivs in wanted.items() if ivs}
        async with self._sub_lock:
            before = self._active()
            self.refused = {
                s: r for s, r in self.refused.items() if s in wanted and s in self._subs
            }
            self._subs = wanted
            after = self._active()
            gone = sorted(s for s in before if s not in after)
            self._trade_ids.forget(gone)
            if self.holes is not None:
                self.holes.drop(gone)
            self.aggregator.set_intervals(after)
            for key in [k for k in self._gaps if k[1] not in after.get(k[0], ())]:
                del self._gaps[key]
            if self._conn is None or not self._observing:
                return
            added = sorted(
                (s, iv) for s, ivs in after.items() for iv in ivs if iv not in before.get(s, ())
            )
            if gone:
                await self._send(await self.provider._unsubscribe(gone))
            await self._subscribe(added)

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
        timer = asyncio.create_task(self._timer(), name=f"live:{self.name}:timer")
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
            if self._backfill_task is not None:
                self._backfill_task.cancel()
            await asyncio.gather(
                timer, *(t for t in [self._backfill_task] if t), return_exceptions=True
            )
            if self.holes is not None:
                await self.holes.close()
            self._set_state("idle")

    async def _connect(self) -> bool:
        self._set_state("connecting")
        self._conn = await asyncio.wait_for(self.provider._connect(), CONNECT_TIMEOUT)
        self.stats.connects += 1
        self._touch()
        async with self._sub_lock:
            await self._subscribe(
                sorted((s, iv) for s, ivs in self._active().items() for iv in ivs)
            )
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
        conn, parse = self._conn, self.provider._parse_message
        pause_at = time.monotonic() + READ_SLICE
        async for message in conn:
            self._touch()
            self.stats.messages += 1
            try:
                records = await parse(message)
            except Exception as exc:
                self._bad_message(exc)
                continue
            if records:
                await self._route(records)
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
        reason = describe_error(exc)
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
            self.aggregator.interrupt(self._last_message)
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except Exception as exc:  # the connection is gone either way; say why
                log.info("%s: closing the connection failed: %s", self.name, describe_error(exc))

    def _set_state(self, state: str, detail: str | None = None) -> None:
        if state != self.state or detail:
            self.state = state
            self.bus.publish(ProviderState(self.name, state, detail))

    # -- records ---------------------------------------------------------------------------

    async def _route(self, records: Iterable[Tick | Quote | Bar | SubscriptionRefused]) -> None:
        ticks: list[Tick] = []
        rows: list[TickRow] = []
        subs, first_time = self._subs, self._trade_ids.first_time
        publish, name = self.bus.publish, self.name
        for r in records:
            if type(r) is Tick:
                symbol = r.symbol
                if symbol not in subs:
                    continue
                tid = r.trade_id
                if tid is None:
                    self._seq += 1
                    tid = self._seq
                elif not first_time(symbol, tid, r.ts):
                    self.stats.duplicates += 1
                    continue
                ticks.append(r)
                rows.append(TickRow(name, symbol, r.ts, tid, r.price, r.size, r.side))
                publish(TickEvent(name, r))
            elif isinstance(r, Quote):
                self.stats.quotes += 1
                publish(QuoteEvent(name, r))
            elif isinstance(r, Bar):
                self.aggregator.add_bar(r)
            elif isinstance(r, SubscriptionRefused):
                self._refuse(r)
        if not ticks:
            return
        self.aggregator.add_ticks(ticks)  # candles (add_bar) never feed the series ticks do
        self.stats.ticks += len(rows)
        if self.store_ticks:
            await self.writer.put_ticks(rows)

    def _refuse(self, refusal: SubscriptionRefused) -> None:
        if refusal.symbol in self.refused or refusal.symbol not in self._subs:
            return
        self.refused[refusal.symbol] = refusal.reason
        self.aggregator.set_intervals(self._active())
        for key in [k for k in self._gaps if k[0] == refusal.symbol]:
            del self._gaps[key]
        message = f"{self.name} refused {refusal.symbol}: {refusal.reason}"
        log.warning("%s", message)
        self.bus.publish(EngineError(f"live:{self.name}:{refusal.symbol}", message))

    def _bad_message(self, exc: Exception) -> None:
        self.stats.bad_messages += 1
        now = time.monotonic()
        if now - self._last_bad_report >= ERROR_THROTTLE:
            self._last_bad_report = now
            message = (
                f"{self.name} sent a message that could not be read "
                f"({self.stats.bad_messages} so far): {describe_error(exc)}"
            )
            log.warning("%s", message)
            self.bus.publish(EngineError(f"live:{self.name}", message))

    # -- bars and gap filling --------------------------------------------------------------

    async def _timer(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self._write_due()
            except Exception as exc:
                message = f"{self.name}: writing live bars failed: {describe_error(exc)}"
                log.error("%s", message)
                self.bus.publish(EngineError(f"live:{self.name}", message))
            if self._gaps and (self._backfill_task is None or self._backfill_task.done()):
                self._backfill_task = asyncio.create_task(
                    self._run_backfills(), name=f"live:{self.name}:backfill"
                )
            if self.holes is not None:
                self.holes.kick()

    async def _write_due(self) -> None:
        if not await self._record_gaps():
            return  # no bar may be written past a span that is not on record yet
        rows = self.aggregator.due(self.clock())
        if rows:
            await self.writer.put_bars("live_data", rows)

    async def _record_gaps(self) -> bool:
        """Put the spans queued for filling on record; False while the database cannot take
        them (bars then wait in the aggregator, as they would in the writer's queue)."""
        if self._gap_log is None:
            return True
        async with self._recording:
            if not self._unrecorded:
                return True
            gaps, self._unrecorded = self._unrecorded, []
            try:
                await self._gap_log.record((g.symbol, g.interval, g.start, g.end) for g in gaps)
            except OUTAGE_ERRORS as exc:
                self._unrecorded = gaps + self._unrecorded
                if not self._gap_log_down:
                    log.warning(
                        "%s: cannot record gaps to fill, holding bars: %s",
                        self.name,
                        describe_error(exc),
                    )
                self._gap_log_down = True
                return False
            self._gap_log_down = False
            return True

    def _queue_gaps(self, gaps: list[Gap]) -> None:
        if self._backfill is None:
            for gap in gaps:
                log.info(
                    "%s %s %s: %s..%s not observed and no history to fill it",
                    self.name,
                    gap.symbol,
                    gap.interval,
                    gap.start,
                    gap.end,
                )
            return
        if self._gap_log is not None:
            self._unrecorded.extend(gaps)
        for gap in gaps:
            key = (gap.symbol, gap.interval)
            pending = self._gaps.get(key)
            if pending is None:
                self._gaps[key] = _PendingGap(gap.start, gap.end)
            else:
                pending.start = min(pending.start, gap.start)
                pending.end = max(pending.end, gap.end)

    async def _run_backfills(self) -> None:
        """Fill every gap whose span has closed (plus the grace), one at a time.

        The ready ones are taken out of `_gaps` at once: a reconnect during an earlier fill
        then queues a new gap instead of stretching a taken one past what has closed (its
        fill would come back short and the rest of its span would never be asked for)."""
        settle = timedelta(seconds=self.grace)
        while True:
            now = self.clock()
            ready = [
                (k, g)
                for k, g in self._gaps.items()
                if now >= g.end + settle and (g.not_before is None or now >= g.not_before)
            ]
            if not ready:
                return
            for key, _ in ready:
                del self._gaps[key]
            for key, gap in ready:
                await self._fill(key, gap)

    async def _fill(self, key: tuple[str, Interval], gap: _PendingGap) -> None:
        symbol, interval = key
        started = utc_now()
        try:
            result = await self._backfill(symbol, interval, gap.start, gap.end)
        except Exception as exc:
            gap.attempts += 1
            self.stats.backfill_failures += 1
            error = describe_error(exc)
            retry = gap.attempts < ATTEMPTS
            if retry:
                delay = timedelta(seconds=RETRY.ceiling(gap.attempts))
                gap.not_before = self.clock() + delay
                later = self._gaps.get(key)
                if later is not None:  # a newer gap of the same series arrived meanwhile
                    gap.start, gap.end = min(gap.start, later.start), max(gap.end, later.end)
                self._gaps[key] = gap
            outcome = (
                "will retry"
                if retry
                else (
                    "giving up until the next start, which fills the recorded gap"
                    if self._gap_log is not None
                    else "giving up; the bars stay missing"
                )
            )
            message = (
                f"{self.name} {symbol} {interval}: filling {gap.start.isoformat()} to "
                f"{gap.end.isoformat()} failed (attempt {gap.attempts}, {outcome}): "
                f"{error}"
            )
            log.warning("%s", message)
            self.bus.publish(EngineError(f"live:{self.name}:{symbol}", message))
            self.bus.publish(
                JobRun(
                    self.name,
                    symbol,
                    interval.value,
                    "failed",
                    0,
                    started,
                    utc_now(),
                    error,
                )
            )
            return
        self.stats.backfills += 1
        await self._resolve(key, gap)
        rows = result if isinstance(result, int) else 0
        self.bus.publish(JobRun(self.name, symbol, interval.value, "ok", rows, started, utc_now()))

    async def _resolve(self, key: tuple[str, Interval], gap: _PendingGap) -> None:
        """Close the records of a filled span once its bars are committed. If that fails the
        next start fills the span again, which rewrites the same bars."""
        if self._gap_log is None or not await self._record_gaps():
            return
        try:
            await self.writer.flush("live_data")
            await self._gap_log.resolve(*key, gap.start, gap.end)
        except OUTAGE_ERRORS as exc:
            log.info(
                "%s %s %s: filled, but the gap record stays open: %s",
                self.name,
                *key,
                describe_error(exc),
            )

    async def _rest_backfill(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> int:
        return await rest_backfill(
            self.provider, self.writer, self.name, symbol, interval, start, end
        )

    # -- shutdown --------------------------------------------------------------------------

    async def stop(self) -> None:
        """Close the socket and write the bars that are due; open bars are dropped (partial)."""
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait([task])
        if not await self._record_gaps():
            log.warning(
                "%s: bars due at shutdown not written: the spans still to fill could "
                "not be recorded; the next start fills them from history",
                self.name,
            )
            return
        rows = self.aggregator.flush_all(self.clock())
        if rows:
            await self.writer.put_bars("live_data", rows)
