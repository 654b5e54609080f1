"""A live session's bar timer: every `FLUSH_INTERVAL` it writes the bars that have closed (plus
the grace) by the feed's own time to `live_data`, rebuilds bars that truly late trades belong
to, and starts what fills gaps in the background.

The feed's time is the newest trade time the session has read: an engine that lags its feed
(a backlog in the socket, a writer making it wait for room) closes bars only once it has read
the trades that follow them, so it writes later, never short. The wall clock takes over only
while the stream is silent: no trade read for `silence` seconds while the session is free to
read (not waiting for room in the writer's queue), which keeps quiet feeds' bars on time.

Nothing partial reaches `live_data`, and no bar is written past a span that is not on record
yet (see engine/gap_filler.py): while the gap log cannot be written, bars wait in the
aggregator, as they would in the writer's queue.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime

from quasar_tui.core.clock import Clock
from quasar_tui.core.messages import one_line
from quasar_tui.engine.aggregator import BarAggregator, Correction
from quasar_tui.engine.events import EngineError, EventBus
from quasar_tui.engine.gap_filler import GapFiller
from quasar_tui.engine.tick_holes import TickHoles
from quasar_tui.engine.writer import Writer

log = logging.getLogger("quasar.engine.live")

FLUSH_INTERVAL = 0.1  # how often closed bars are looked for: bounds their delay past the grace
CORRECTION_LOG_EVERY = 60.0  # seconds between log lines about one series' late trades


class FeedClock:
    """The feed's own time, in epoch seconds; see the module docstring."""

    def __init__(
        self,
        aggregator: BarAggregator,
        wall: Clock,
        silence: float,
        waiting_for_room: Callable[[], bool],
    ) -> None:
        self.aggregator = aggregator
        self.wall = wall
        self.silence = silence
        self.waiting_for_room = waiting_for_room
        self.heard = wall()  # when the session last read trades (set by the session)

    def now(self) -> float:
        """The newest trade time read, or the wall clock once the stream is silent; -inf
        before the first trade of a stream that is not silent yet."""
        event = self.aggregator.event_time
        if self.waiting_for_room():
            return event
        wall = self.wall().timestamp()
        if wall - self.heard.timestamp() < self.silence:
            return event
        return max(event, wall)

    def now_datetime(self) -> datetime:
        t = self.now()
        return datetime.fromtimestamp(t if math.isfinite(t) else 0.0, UTC)


class BarTimer:
    """Writes one session's closed bars; see the module docstring."""

    def __init__(
        self,
        name: str,
        aggregator: BarAggregator,
        writer: Writer,
        bus: EventBus,
        *,
        feed_clock: FeedClock,
        filler: GapFiller | None,
        holes: TickHoles | None,
    ) -> None:
        self.name = name
        self.aggregator = aggregator
        self.writer = writer
        self.bus = bus
        self.feed_clock = feed_clock
        self.filler = filler
        self.holes = holes
        self.bars_corrected = 0
        self._to_correct: list[Correction] = []
        self._logged: dict[tuple[str, str], float] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self._write_due()
                await self._correct()
            except Exception as exc:
                message = f"{self.name}: writing live bars failed: {one_line(exc)}"
                log.error("%s", message)
                self.bus.publish(EngineError(f"live:{self.name}", message))
            if self.filler is not None:
                self.filler.kick()
            if self.holes is not None:
                self.holes.kick()

    async def write_final(self) -> None:
        """Shutdown: write the bars that are due; open bars are dropped (partial)."""
        if not await self._recorded():
            log.warning(
                "%s: bars due at shutdown not written: the spans still to fill could "
                "not be recorded; the next start fills them from history",
                self.name,
            )
            return
        rows = self.aggregator.flush_all(self.feed_clock.now_datetime())
        if rows:
            await self.writer.put_bars("live_data", rows)
        await self._correct()

    async def _write_due(self) -> None:
        if not await self._recorded():
            return  # no bar may be written past a span that is not on record yet
        rows = self.aggregator.due_at(self.feed_clock.now())
        if rows:
            await self.writer.put_bars("live_data", rows)

    async def _correct(self) -> None:
        """Rebuild the bars that truly late trades belong to; kept for the next round when
        the database cannot be reached."""
        self._to_correct.extend(self.aggregator.take_corrections())
        if not self._to_correct:
            return
        bars = self._to_correct
        changed = await self.writer.rebuild_live_bars(
            self.aggregator.provider,
            [b.symbol for b in bars],
            [b.interval.value for b in bars],
            [b.start for b in bars],
            [b.end for b in bars],
        )
        self._to_correct = []
        self.bars_corrected += changed
        self._report(bars)

    def _report(self, bars: list[Correction]) -> None:
        """One log line per series and minute at most."""
        now = self.feed_clock.wall().timestamp()
        for bar in bars:
            key = (bar.symbol, bar.interval.value)
            if now - self._logged.get(key, -math.inf) >= CORRECTION_LOG_EVERY:
                self._logged[key] = now
                log.warning(
                    "%s %s %s: a trade came after its bar (%s) was written; the bar was "
                    "rebuilt from the stored ticks",
                    self.name,
                    bar.symbol,
                    bar.interval.value,
                    f"{bar.start:%Y-%m-%d %H:%M:%S}",
                )

    async def _recorded(self) -> bool:
        return self.filler is None or await self.filler.record()
