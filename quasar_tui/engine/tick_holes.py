"""Trades a live session never received, fetched from the provider's REST trades.

For a provider whose trade ids count up by one per symbol (`TRADE_IDS_SEQUENTIAL`), a skipped
id is a trade made while the session was away: during a reconnect, beyond what the feed's
snapshot replays, or across a restart (a starting session takes up from the newest stored
tick). Each run of skipped ids is a hole; holes are filled one at a time with `get_trades`,
writing to `live_ticks` only the missing ids (the others were stored as they arrived). Bars are
not touched here: the live gap fill repairs them from the provider's candles.

If a fill finds none of the ids it looked for, the feed's ids are not sequential after all:
the session stops looking for holes rather than ask REST once per trade.

Fills wait while the provider cannot be asked (its host restarts), as the bar gap fills do.

Holes are kept in memory only; a starting session finds the ones an engine stopped or killed
left behind by looking for skipped ids among the newest `RECENT` stored ticks of each symbol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime

from quasar_tui.core.messages import one_line
from quasar_tui.engine.backoff import Backoff
from quasar_tui.engine.events import EngineError, EventBus
from quasar_tui.engine.writer import Writer
from quasar_tui.sdk.abilities import TradeSource
from quasar_tui.store.database import Database
from quasar_tui.store.tables import TICKS, TickRow

log = logging.getLogger("quasar.engine.live")

MAX_HOLE = 20_000  # ids; a longer absence is not replayed trade by trade (bars still are)
ATTEMPTS = 5  # fetches of one span (trades here, candles in live.py) before giving up
RETRY = Backoff(base=2.0, cap=60.0)  # the delay before each next attempt: RETRY.ceiling(n)
#: Whether the provider can be asked now (a hosted one cannot while its host restarts).
Available = Callable[[], bool]
RECENT = 5_000  # stored ticks per symbol searched for holes at a start
WRITE_EVERY = 1_000  # ticks handed to the writer at once


def always() -> bool:
    """A provider in this process can always be asked."""
    return True


@dataclass
class Hole:
    """Ids after `after_id` (made at `after_ts`) and before `before_id` never received."""

    symbol: str
    after_id: int
    after_ts: datetime
    before_id: int
    attempts: int = 0
    not_before: float = 0.0  # monotonic time of the next attempt


async def newest_stored(
    db: Database, provider: str, symbols: Iterable[str]
) -> dict[str, tuple[int, datetime]]:
    """Symbol -> (trade id, time) of its newest stored tick, for the symbols that have one."""
    symbols = sorted(symbols)
    if not symbols:
        return {}
    rows = await db.fetch(TICKS.last_rows, [provider] * len(symbols), symbols)
    return {r["symbol"]: (r["seq"], r["ts"]) for r in rows if r["seq"] is not None}


_HOLES = """
    SELECT k.symbol, r.after_id, r.after_ts, r.before_id
      FROM unnest($2::text[]) AS k(symbol)
      CROSS JOIN LATERAL (
            SELECT lag(seq) OVER w AS after_id, lag(ts) OVER w AS after_ts, seq AS before_id
              FROM (SELECT t.ts, t.seq FROM live_ticks t
                     WHERE t.provider = $1 AND t.symbol = k.symbol
                     ORDER BY t.ts DESC, t.seq DESC LIMIT $3) AS newest
            WINDOW w AS (ORDER BY seq)) AS r
     WHERE r.before_id > r.after_id + 1
     ORDER BY k.symbol, r.before_id"""


async def stored_holes(
    db: Database, provider: str, symbols: Iterable[str]
) -> list[tuple[str, int, datetime, int]]:
    """Runs of skipped ids among the newest stored ticks of each symbol, oldest first:
    (symbol, id before the run, its time, id after the run)."""
    rows = await db.fetch(_HOLES, provider, sorted(symbols), RECENT)
    return [(r["symbol"], r["after_id"], r["after_ts"], r["before_id"]) for r in rows]


class TickHoles:
    """The holes of one live session and the task that fills them."""

    def __init__(
        self,
        provider_name: str,
        provider: TradeSource,
        writer: Writer,
        bus: EventBus,
        available: Available = always,
    ) -> None:
        self.name = provider_name
        self.available = available
        self.provider = provider
        self.writer = writer
        self.bus = bus
        self.filled = 0  # ticks written from REST
        self.failures = 0
        self.given_up = False  # the ids turned out not to be sequential
        self._holes: list[Hole] = []
        self._task: asyncio.Task[None] | None = None

    def found(self, symbol: str, after_id: int, after_ts: datetime, before_id: int) -> None:
        """TradeIds' `on_skip`: ids after `after_id` up to `before_id` were skipped."""
        if self.given_up:
            return
        missing = before_id - after_id - 1
        if missing > MAX_HOLE:
            log.info(
                "%s %s: %d trades made while away are not fetched one by one (over %d); "
                "bars are filled from candles",
                self.name,
                symbol,
                missing,
                MAX_HOLE,
            )
            return
        self._holes.append(Hole(symbol, after_id, after_ts, before_id))

    def drop(self, symbols: Iterable[str]) -> None:
        """Forget the holes of symbols no longer subscribed."""
        gone = set(symbols)
        self._holes = [h for h in self._holes if h.symbol not in gone]

    def kick(self) -> None:
        """Start filling the holes that are due, unless a fill is already running."""
        now = time.monotonic()
        if (
            self.available()
            and (self._task is None or self._task.done())
            and any(h.not_before <= now for h in self._holes)
        ):
            self._task = asyncio.create_task(self._fill_due(), name=f"live:{self.name}:ticks")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _fill_due(self) -> None:
        now = time.monotonic()
        due = [h for h in self._holes if h.not_before <= now]
        self._holes = [h for h in self._holes if h.not_before > now]
        for n, hole in enumerate(due):
            if not self.available():  # the host went away: the rest wait for the next
                self._holes.extend(due[n:])
                return
            try:
                written = await self._fill(hole)
            except Exception as exc:
                self._failed(hole, exc)
                continue
            if not written:
                self._give_up(hole)
                return
            self.filled += written

    def _give_up(self, hole: Hole) -> None:
        self.given_up = True
        self._holes.clear()
        message = (
            f"{self.name} {hole.symbol}: REST trades hold none of the ids "
            f"{hole.after_id + 1} to {hole.before_id - 1}, so trade ids are not "
            "sequential; missed trades are no longer fetched (bars still are)"
        )
        log.warning("%s", message)
        self.bus.publish(EngineError(f"live:{self.name}", message))

    async def _fill(self, hole: Hole) -> int:
        rows: list[TickRow] = []
        written = 0
        async with aclosing(self.provider.get_trades(hole.symbol, hole.after_ts)) as trades:
            async for tick in trades:
                tid = tick.trade_id
                if tid is None or tid <= hole.after_id:
                    continue
                if tid >= hole.before_id:
                    break
                rows.append(
                    TickRow(self.name, hole.symbol, tick.ts, tid, tick.price, tick.size, tick.side)
                )
                if len(rows) >= WRITE_EVERY:
                    await self.writer.put_ticks(rows)
                    written, rows = written + len(rows), []
        if rows:
            await self.writer.put_ticks(rows)
        return written + len(rows)

    def _failed(self, hole: Hole, exc: Exception) -> None:
        self.failures += 1
        hole.attempts += 1
        retry = hole.attempts < ATTEMPTS
        if retry:
            hole.not_before = time.monotonic() + RETRY.ceiling(hole.attempts)
            self._holes.append(hole)
        outcome = "will retry" if retry else "giving up; those ticks stay missing"
        message = (
            f"{self.name} {hole.symbol}: fetching trades {hole.after_id + 1} to "
            f"{hole.before_id - 1} failed (attempt {hole.attempts}, {outcome}): "
            f"{one_line(exc)}"
        )
        log.warning("%s", message)
        self.bus.publish(EngineError(f"live:{self.name}:{hole.symbol}", message))

    @property
    def pending(self) -> int:
        return len(self._holes)
