"""Where a live session sends what its provider's `_parse_message` returns: ticks to
`live_ticks`, the aggregator and the bus (a `TickEvent` per trade only while someone subscribes
to them, and a `TradesRead` per burst of messages: the session reads what its socket holds
without a turn of the event loop, and the trades read meanwhile go out together once it turns,
so a feed of one trade a message does not pay for an event each); quotes to the bus only;
candles to the aggregator; refusals back to the session.

Ticks re-delivered after a reconnect are recognised by trade id and not counted twice
(engine/trade_ids.py). `live_ticks.seq` is the provider's trade id when it has one; otherwise a
counter that starts at the router's creation time in nanoseconds, so it never repeats across
restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from quasar_tui.engine.aggregator import BarAggregator
from quasar_tui.engine.events import EventBus, QuoteEvent, TickEvent, TradesRead
from quasar_tui.engine.live_subscriptions import SubscriptionSet
from quasar_tui.engine.trade_ids import TradeIds
from quasar_tui.engine.writer import Writer
from quasar_tui.sdk.models import Bar, Quote, SubscriptionRefused, Tick
from quasar_tui.store.tables import TickRow

Record = Tick | Quote | Bar | SubscriptionRefused


@dataclass
class SessionStats:
    """A live session's counters, published per provider in `Engine.stats()`."""

    connects: int = 0
    messages: int = 0
    ticks: int = 0
    duplicates: int = 0
    quotes: int = 0
    bad_messages: int = 0
    idle_timeouts: int = 0
    backfills: int = 0
    backfill_failures: int = 0


class RecordRouter:
    """Routes one live session's records; see the module docstring."""

    def __init__(
        self,
        name: str,
        subscriptions: SubscriptionSet,
        trade_ids: TradeIds,
        aggregator: BarAggregator,
        writer: Writer,
        bus: EventBus,
        stats: SessionStats,
        *,
        store_ticks: bool,
        on_refused: Callable[[SubscriptionRefused], None],
    ) -> None:
        self.name = name
        self.subscriptions = subscriptions
        self.trade_ids = trade_ids
        self.aggregator = aggregator
        self.writer = writer
        self.bus = bus
        self.stats = stats
        self.store_ticks = store_ticks
        self.on_refused = on_refused
        self.waiting_for_room = False  # in put_ticks: the session reads nothing meanwhile
        self._seq = time.time_ns()
        self._read: list[Tick] = []  # trades read since the last TradesRead

    async def route(self, records: Iterable[Record]) -> bool:
        """Whether there were new trades among them."""
        ticks: list[Tick] = []
        rows: list[TickRow] = []
        wanted, first_time = self.subscriptions.wanted, self.trade_ids.first_time
        publish, name = self.bus.publish, self.name
        each = self.bus.wants(TickEvent)  # a console in this process follows every trade
        new_row = tuple.__new__  # TickRow without NamedTuple's __new__, a Python-level call
        for r in records:
            if type(r) is Tick:
                symbol = r.symbol
                if symbol not in wanted:
                    continue
                tid = r.trade_id
                if tid is None:
                    self._seq += 1
                    tid = self._seq
                elif not first_time(symbol, tid, r.ts):
                    self.stats.duplicates += 1
                    continue
                ticks.append(r)
                rows.append(new_row(TickRow, (name, symbol, r.ts, tid, r.price, r.size, r.side)))
                if each:
                    publish(TickEvent(name, r))
            elif isinstance(r, Quote):
                self.stats.quotes += 1
                publish(QuoteEvent(name, r))
            elif isinstance(r, Bar):
                self.aggregator.add_bar(r)
            elif isinstance(r, SubscriptionRefused):
                self.on_refused(r)
        if not ticks:
            return False
        if not self._read:
            asyncio.get_running_loop().call_soon(self._publish_read)
        self._read += ticks
        self.aggregator.add_ticks(ticks)  # candles (add_bar) never feed the series ticks do
        self.stats.ticks += len(rows)
        if self.store_ticks and not self.writer.offer_ticks(rows):
            self.waiting_for_room = True
            try:
                await self.writer.put_ticks(rows)
            finally:
                self.waiting_for_room = False
        return True

    def _publish_read(self) -> None:
        ticks, self._read = self._read, []
        self.bus.publish(TradesRead(self.name, ticks))
