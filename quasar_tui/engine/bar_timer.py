"""A live session's bar timer: every `FLUSH_INTERVAL` it writes the bars that have closed (plus
the grace) to `live_data`, and starts what fills gaps in the background.

Nothing partial reaches `live_data`, and no bar is written past a span that is not on record
yet (see engine/gap_filler.py): while the gap log cannot be written, bars wait in the
aggregator, as they would in the writer's queue.
"""

from __future__ import annotations

import asyncio
import logging

from quasar_tui.core.clock import Clock
from quasar_tui.core.messages import one_line
from quasar_tui.engine.aggregator import BarAggregator
from quasar_tui.engine.events import EngineError, EventBus
from quasar_tui.engine.gap_filler import GapFiller
from quasar_tui.engine.tick_holes import TickHoles
from quasar_tui.engine.writer import Writer

log = logging.getLogger("quasar.engine.live")

FLUSH_INTERVAL = 0.1  # how often closed bars are looked for: bounds their delay past the grace


class BarTimer:
    """Writes one session's closed bars; see the module docstring."""

    def __init__(
        self,
        name: str,
        aggregator: BarAggregator,
        writer: Writer,
        bus: EventBus,
        *,
        clock: Clock,
        filler: GapFiller | None,
        holes: TickHoles | None,
    ) -> None:
        self.name = name
        self.aggregator = aggregator
        self.writer = writer
        self.bus = bus
        self.clock = clock
        self.filler = filler
        self.holes = holes

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self._write_due()
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
        rows = self.aggregator.flush_all(self.clock())
        if rows:
            await self.writer.put_bars("live_data", rows)

    async def _write_due(self) -> None:
        if not await self._recorded():
            return  # no bar may be written past a span that is not on record yet
        rows = self.aggregator.due(self.clock())
        if rows:
            await self.writer.put_bars("live_data", rows)

    async def _recorded(self) -> bool:
        return self.filler is None or await self.filler.record()
