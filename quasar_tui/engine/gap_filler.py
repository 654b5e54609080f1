"""Filling a live session's spans that the feed did not observe, from the provider's history.

A span is queued when a connection starts (or resumes) mid-bar, put on record in the gap log
before any later bar of its series is written, filled once it has closed (plus the grace), one
fill at a time, retried with backoff, and its record resolved once the fill is committed. With
no gap log an engine stopped first loses the span; with one, the next start fills it. Fills
wait while the provider cannot be asked (its host restarts): a try then would spend one of the
span's attempts on the host's absence, and a restart longer than all of them gave it up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from quasar_tui.core.clock import Clock
from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.engine.aggregator import Gap
from quasar_tui.engine.events import EngineError, EventBus, JobRun
from quasar_tui.engine.live_gaps import LiveGaps
from quasar_tui.engine.live_router import SessionStats
from quasar_tui.engine.tick_holes import ATTEMPTS, RETRY, Available, always
from quasar_tui.engine.writer import OUTAGE_ERRORS, Writer
from quasar_tui.sdk.abilities import HistorySource
from quasar_tui.store.tables import LiveBarRow

log = logging.getLogger("quasar.engine.live")

#: (symbol, interval, start, end) -> bars written (or anything else: not counted).
Backfill = Callable[[str, str, datetime, datetime], Awaitable[Any]]
SeriesKey = tuple[str, Interval]


async def rest_backfill(
    provider: HistorySource,
    writer: Writer,
    provider_name: str,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
) -> int:
    """Write the provider's closed bars in [start, end) to live_data; return how many.

    The writer merges them with ON CONFLICT since they lie before the newest live bars. Candles
    that say they hold no trades are skipped: live bars only exist where trades happened. A
    candle without a trade count stores none (NULL), not a count of 0.
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
            bar.trades,
        )
        async for bar in provider.get_history(symbol, start, end, iv)
        if start <= bar.ts < end and bar.trades != 0
    ]
    if rows:
        await writer.put_bars("live_data", rows)
    return len(rows)


@dataclass
class PendingGap:
    """A span of one series waiting for its fill."""

    start: datetime
    end: datetime
    attempts: int = 0
    not_before: datetime | None = None


class GapFiller:
    """The spans of one live session waiting for a fill; see the module docstring."""

    def __init__(
        self,
        name: str,
        backfill: Backfill,
        writer: Writer,
        bus: EventBus,
        *,
        clock: Clock,
        grace: float,
        gap_log: LiveGaps | None,
        stats: SessionStats,
        available: Available = always,
    ) -> None:
        self.name = name
        self.available = available
        self.backfill = backfill
        self.writer = writer
        self.bus = bus
        self.clock = clock
        self.grace = grace
        self.gap_log = gap_log
        self.stats = stats
        self._pending: dict[SeriesKey, PendingGap] = {}
        self._unrecorded: list[Gap] = []
        self._log_down = False
        self._recording = asyncio.Lock()  # the bar timer and the fills both record
        self._task: asyncio.Task[None] | None = None

    def queue(self, gaps: Iterable[Gap]) -> None:
        """Spans not observed: put on record at the next `record()`, filled once closed."""
        gaps = list(gaps)
        if self.gap_log is not None:
            self._unrecorded.extend(gaps)
        for gap in gaps:
            key = (gap.symbol, gap.interval)
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = PendingGap(gap.start, gap.end)
            else:
                pending.start = min(pending.start, gap.start)
                pending.end = max(pending.end, gap.end)

    def keep(self, wanted: Callable[[SeriesKey], bool]) -> None:
        """Forget the spans of series no longer subscribed (or refused)."""
        for key in [k for k in self._pending if not wanted(k)]:
            del self._pending[key]

    async def record(self) -> bool:
        """Put the queued spans on record; False while the database cannot take them (bars
        then wait in the aggregator, as they would in the writer's queue)."""
        if self.gap_log is None:
            return True
        async with self._recording:
            if not self._unrecorded:
                return True
            gaps, self._unrecorded = self._unrecorded, []
            try:
                await self.gap_log.record((g.symbol, g.interval, g.start, g.end) for g in gaps)
            except OUTAGE_ERRORS as exc:
                self._unrecorded = gaps + self._unrecorded
                if not self._log_down:
                    log.warning(
                        "%s: cannot record gaps to fill, holding bars: %s",
                        self.name,
                        one_line(exc),
                    )
                self._log_down = True
                return False
            self._log_down = False
            return True

    def kick(self) -> None:
        """Start filling in the background unless a fill runs already."""
        if self._pending and self.available() and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name=f"live:{self.name}:backfill")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        """Fill every span that has closed (plus the grace), one at a time.

        The ready ones are taken out of `_pending` at once: a reconnect during an earlier fill
        then queues a new span instead of stretching a taken one past what has closed (its
        fill would come back short and the rest of its span would never be asked for)."""
        settle = timedelta(seconds=self.grace)
        while True:
            now = self.clock()
            ready = [
                (k, g)
                for k, g in self._pending.items()
                if now >= g.end + settle and (g.not_before is None or now >= g.not_before)
            ]
            if not ready:
                return
            for key, _ in ready:
                del self._pending[key]
            for n, (key, gap) in enumerate(ready):
                if not self.available():  # the host went away: the rest wait for the next
                    for later_key, later in ready[n:]:
                        self._put_back(later_key, later)
                    return
                await self._fill(key, gap)

    async def _fill(self, key: SeriesKey, gap: PendingGap) -> None:
        symbol, interval = key
        started = self.clock()
        try:
            result = await self.backfill(symbol, interval, gap.start, gap.end)
        except Exception as exc:
            self._failed(key, gap, exc, started)
            return
        self.stats.backfills += 1
        await self._resolve(key, gap)
        rows = result if isinstance(result, int) else 0
        self.bus.publish(
            JobRun(self.name, symbol, interval.value, "ok", rows, started, self.clock())
        )

    def _failed(self, key: SeriesKey, gap: PendingGap, exc: Exception, started: datetime) -> None:
        symbol, interval = key
        gap.attempts += 1
        self.stats.backfill_failures += 1
        error = one_line(exc)
        retry = gap.attempts < ATTEMPTS
        if retry:
            gap.not_before = self.clock() + timedelta(seconds=RETRY.ceiling(gap.attempts))
            self._put_back(key, gap)
            outcome = "will retry"
        elif self.gap_log is not None:
            outcome = "giving up until the next start, which fills the recorded gap"
        else:
            outcome = "giving up; the bars stay missing"
        message = (
            f"{self.name} {symbol} {interval}: filling {gap.start.isoformat()} to "
            f"{gap.end.isoformat()} failed (attempt {gap.attempts}, {outcome}): {error}"
        )
        log.warning("%s", message)
        self.bus.publish(EngineError(f"live:{self.name}:{symbol}", message))
        self.bus.publish(
            JobRun(self.name, symbol, interval.value, "failed", 0, started, self.clock(), error)
        )

    def _put_back(self, key: SeriesKey, gap: PendingGap) -> None:
        """Pending again, merged with a newer span of the same series queued meanwhile."""
        later = self._pending.get(key)
        if later is not None:
            gap.start, gap.end = min(gap.start, later.start), max(gap.end, later.end)
        self._pending[key] = gap

    async def _resolve(self, key: SeriesKey, gap: PendingGap) -> None:
        """Close the records of a filled span once its bars are committed. If that fails the
        next start fills the span again, which rewrites the same bars."""
        if self.gap_log is None or not await self.record():
            return
        try:
            await self.writer.flush("live_data")
            await self.gap_log.resolve(*key, gap.start, gap.end)
        except OUTAGE_ERRORS as exc:
            log.info(
                "%s %s %s: filled, but the gap record stays open: %s",
                self.name,
                *key,
                one_line(exc),
            )
