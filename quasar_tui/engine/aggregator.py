"""Ticks (and provider candles) into bars that are written once, complete, never partial.

Times are kept as epoch seconds: a tick costs at most one `timestamp()` call (none when it has
the previous tick's time) and, per subscribed interval, two float comparisons and a few list
updates while it falls in the open bar. Bar edges are only computed when a tick leaves the open
bar.

Completeness rules, which the live session relies on:

- A bar is emitted by `due` once its interval closed more than `grace` seconds before the
  time it is given: the feed's own time (engine/bar_timer.py), so an engine that lags its feed
  writes bars later, never without trades it has not read yet. `event_time` is the newest
  trade time seen.
- A series only accepts bars that start at or after its *floor*: bars before it were emitted
  already or were only partly observed (the session connected, or reconnected, mid-bar).
  A tick below the floor in a bar this series observed completely (from `observe_from` on)
  is truly late: its bar was written without it, so the bar is listed by `take_corrections`
  to be rebuilt from the stored ticks (without stored ticks it is counted as `late_dropped`:
  a real loss). Ticks in bars this series never observed completely (the snapshot a stream
  sends on subscribe, the bar joined mid-way) are counted as `history_filled` and left out:
  the REST gap fill writes those bars, so nothing is lost.
- `interrupt` (the connection dropped) discards bars that may have missed trades; `observe_from`
  (subscribed again) moves the floor to the first bar fully observed and reports the span in
  between as a gap for the session to fill from the provider's history.
- Candle streams without a closed flag: the latest version of the current candle is kept and it
  becomes final only when a candle with a later start arrives.
- `flush_all` (clean shutdown) emits what is due and drops the rest: a still-open bar is partial
  by definition, and the next start's gap fill writes it from REST history instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk.models import Bar, Tick
from quasar_tui.store.tables import LiveBarRow

_MONDAY = 345_600  # 1970-01-05 00:00 UTC, the first Monday after the epoch
_NEVER = -math.inf

# A bar under construction: [open, high, low, close, volume, trades, end].
_O, _H, _L, _C, _V, _N, _END = range(7)


@dataclass
class AggregatorStats:
    ticks: int = 0
    candles: int = 0
    bars_emitted: int = 0
    late_dropped: int = 0  # ticks that came after their bar was written, and are lost
    late_corrected: int = 0  # ticks that came after their bar was written: it is rebuilt
    history_filled: int = 0  # ticks in bars never observed completely: REST history fills
    partial_dropped: int = 0
    unrouted: int = 0


@dataclass(frozen=True)
class Gap:
    """A span of one series the session did not observe completely: [start, end)."""

    symbol: str
    interval: Interval
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Correction:
    """A written bar [start, end) of one series to rebuild from the stored ticks."""

    symbol: str
    interval: Interval
    start: datetime
    end: datetime


def _epoch(secs: float) -> datetime:
    return datetime.fromtimestamp(secs, UTC)


class _Series:
    """One (symbol, interval): the open bar, closed bars waiting for their grace, the floor."""

    __slots__ = (
        "bar",
        "candles",
        "cur_end",
        "cur_start",
        "floor",
        "interval",
        "missing_from",
        "offset",
        "pending",
        "since",
        "step",
        "symbol",
    )

    def __init__(self, symbol: str, interval: Interval) -> None:
        self.symbol = symbol
        self.interval = interval
        self.step = 0 if interval.is_calendar else interval.seconds
        self.offset = _MONDAY if interval is Interval.W1 else 0
        self.bar: list | None = None
        self.cur_start: float = _NEVER
        self.cur_end: float = _NEVER
        self.pending: dict[int, list] = {}
        self.floor: float = _NEVER
        self.since: float = _NEVER  # bars from here to the floor were observed completely
        self.missing_from: int | None = None
        self.candles = False

    def start_of(self, t: float) -> int:
        secs = math.floor(t)
        if self.step:
            return secs - (secs - self.offset) % self.step
        return int(self.interval.floor(_epoch(secs)).timestamp())

    def end_of(self, start: int) -> int:
        if self.step:
            return start + self.step
        return int(self.interval.next_start(_epoch(start)).timestamp())

    def close_current(self) -> None:
        if self.bar is not None:
            self.pending[int(self.cur_start)] = self.bar
        self.bar = None
        self.cur_start = self.cur_end = _NEVER

    def first_unknown(self, cutoff: float) -> int:
        """Start of the first bar not known complete when the feed stopped at `cutoff`: the bar
        holding `cutoff`, or an earlier open candle (candles are final only when followed)."""
        first = self.start_of(cutoff)
        if self.candles and self.bar is not None:
            first = min(first, int(self.cur_start))
        return first

    def discard_from(self, start: float) -> int:
        """Drop the bars starting at or after `start`; return how many."""
        dropped = 0
        if self.bar is not None and self.cur_start >= start:
            dropped += 1
            self.bar = None
            self.cur_start = self.cur_end = _NEVER
        for key in [k for k in self.pending if k >= start]:
            del self.pending[key]
            dropped += 1
        return dropped


class BarAggregator:
    """Per-provider bar builder for the subscribed (symbol, interval) series."""

    def __init__(
        self,
        provider: str,
        intervals_by_symbol: Mapping[str, Iterable[Interval]],
        grace: float = 2.0,
        *,
        closed_candles: bool = False,
        correct_late: bool = True,
    ) -> None:
        """`correct_late`: truly late ticks ask for their bar to be rebuilt from the stored
        ticks (False when ticks are not stored: they are dropped)."""
        self.provider = provider
        self.grace = grace
        self.closed_candles = closed_candles
        self.correct_late = correct_late
        self.stats = AggregatorStats()
        self.event_time = _NEVER
        self._corrections: dict[tuple[_Series, int], None] = {}
        self._series: dict[tuple[str, Interval], _Series] = {}
        self._routes: dict[str, list[_Series]] = {}
        self.set_intervals(intervals_by_symbol)

    # -- subscriptions -------------------------------------------------------------------

    def set_intervals(self, intervals_by_symbol: Mapping[str, Iterable[Interval]]) -> None:
        """Replace the subscribed series; kept ones keep their state, new ones accept any bar
        until `observe_from` sets their floor."""
        wanted = {(sym, Interval(i)) for sym, ivs in intervals_by_symbol.items() for i in ivs}
        self._series = {key: self._series.get(key) or _Series(*key) for key in sorted(wanted)}
        self._rebuild_routes()

    def series_keys(self) -> list[tuple[str, Interval]]:
        return list(self._series)

    def _rebuild_routes(self) -> None:
        routes: dict[str, list[_Series]] = {}
        for s in self._series.values():
            if not s.candles:
                routes.setdefault(s.symbol, []).append(s)
        self._routes = routes

    # -- input ---------------------------------------------------------------------------

    def add_tick(self, tick: Tick) -> None:
        self.add_ticks((tick,))

    def add_ticks(self, ticks: Iterable[Tick]) -> None:
        """Ticks in arrival order. A feed message usually holds trades of one symbol with one
        timestamp, so the route and the epoch seconds are looked up only when they change."""
        routes = self._routes
        symbol: str | None = None
        series: list[_Series] | None = None
        ts: datetime | None = None
        t = 0.0
        newest = self.event_time
        added = unrouted = 0
        for tick in ticks:
            if tick.symbol != symbol:
                symbol = tick.symbol
                series = routes.get(symbol)
            if series is None:
                unrouted += 1
                continue
            added += 1
            if tick.ts != ts:
                ts = tick.ts
                t = ts.timestamp()
                if t > newest:
                    newest = t
            price = tick.price
            size = tick.size
            for s in series:
                if s.cur_start <= t < s.cur_end:
                    bar = s.bar
                    assert bar is not None  # a current span always has its open bar
                    if price > bar[_H]:
                        bar[_H] = price
                    elif price < bar[_L]:
                        bar[_L] = price
                    bar[_C] = price
                    bar[_V] += size
                    bar[_N] += 1
                else:
                    self._tick_elsewhere(s, t, price, size)
        self.event_time = newest
        self.stats.ticks += added
        self.stats.unrouted += unrouted

    def _tick_elsewhere(self, s: _Series, t: float, price: float, size: float) -> None:
        start = s.start_of(t)
        if start < s.floor:
            if start < s.since:
                self.stats.history_filled += 1
            elif self.correct_late:
                self.stats.late_corrected += 1
                self._corrections[(s, start)] = None
            else:
                self.stats.late_dropped += 1
            return
        if start > s.cur_start:
            s.close_current()
            s.bar = [price, price, price, price, size, 1, s.end_of(start)]
            s.cur_start = start
            s.cur_end = s.bar[_END]
            return
        bar = s.pending.get(start)
        if bar is None:
            s.pending[start] = [price, price, price, price, size, 1, s.end_of(start)]
            return
        bar[_H] = max(bar[_H], price)
        bar[_L] = min(bar[_L], price)
        bar[_C] = price
        bar[_V] += size
        bar[_N] += 1

    def add_bar(self, bar: Bar) -> None:
        """A candle from a provider stream; it needs `symbol` and `interval` set."""
        s = self._series.get((bar.symbol, bar.interval)) if bar.symbol and bar.interval else None
        if s is None:
            self.stats.unrouted += 1
            return
        self.stats.candles += 1
        if not s.candles:
            s.candles = True
            s.discard_from(_NEVER)
            self._rebuild_routes()
        start = int(bar.ts.timestamp())
        if start < s.floor:
            if start < s.since:
                self.stats.history_filled += 1
            else:
                self.stats.late_dropped += 1
            return
        values = [
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            bar.trades or 0,
            s.end_of(start),
        ]
        if self.closed_candles or start < s.cur_start:
            s.pending[start] = values
            return
        if start > s.cur_start:
            s.close_current()
            s.cur_start = start
            s.cur_end = values[_END]
        s.bar = values

    # -- output --------------------------------------------------------------------------

    def due(self, now: datetime) -> list[LiveBarRow]:
        """live_data rows of bars closed more than `grace` seconds before `now`, each once."""
        return self.due_at(now.timestamp())

    def due_at(self, now: float) -> list[LiveBarRow]:
        """`due` with `now` in epoch seconds (-inf: nothing is due)."""
        cutoff = now - self.grace
        rows: list[LiveBarRow] = []
        for s in self._series.values():
            if s.bar is not None and not s.candles and s.cur_end <= cutoff:
                s.close_current()
            if s.pending:
                self._emit(s, cutoff, rows)
        self.stats.bars_emitted += len(rows)
        return rows

    def _emit(self, s: _Series, cutoff: float, rows: list[LiveBarRow]) -> None:
        for start in sorted(s.pending):
            bar = s.pending[start]
            if bar[_END] > cutoff:
                break
            del s.pending[start]
            s.floor = bar[_END]
            rows.append(
                LiveBarRow(
                    self.provider,
                    s.symbol,
                    s.interval.value,
                    _epoch(start),
                    bar[_O],
                    bar[_H],
                    bar[_L],
                    bar[_C],
                    bar[_V],
                    bar[_N],
                )
            )

    def take_corrections(self) -> list[Correction]:
        """Written bars that truly late ticks belong to, each once, oldest first."""
        keys, self._corrections = self._corrections, {}
        return [
            Correction(s.symbol, s.interval, _epoch(start), _epoch(s.end_of(start)))
            for s, start in sorted(keys, key=lambda key: key[1])
        ]

    def flush_all(self, now: datetime) -> list[LiveBarRow]:
        """Shutdown: the rows that are due; everything still open is dropped, not written."""
        rows = self.due(now)
        for s in self._series.values():
            self.stats.partial_dropped += s.discard_from(_NEVER)
        return rows

    # -- connection lifecycle ------------------------------------------------------------

    def interrupt(self, last_seen: datetime) -> None:
        """The feed stopped; nothing after `last_seen` was received.

        Bars that end later than `last_seen - grace` may lack trades and are dropped; the span
        from the first of them is remembered as missing until `observe_from`.
        """
        cutoff = last_seen.timestamp() - self.grace
        for s in self._series.values():
            if s.floor == math.inf:
                continue
            first = max(s.floor, s.first_unknown(cutoff))
            self.stats.partial_dropped += s.discard_from(first)
            s.missing_from = int(first)
            s.floor = s.since = math.inf

    def mark_missing(self, symbol: str, interval: Interval, since: datetime) -> None:
        """Bars from `since` on are known to be missing (e.g. stored bars end there); the next
        `observe_from` reports the gap from there rather than from the bar it joins."""
        s = self._series.get((symbol, interval))
        if s is not None:
            start = s.start_of(since.timestamp())
            if s.missing_from is None or start < s.missing_from:
                s.missing_from = start

    def observe_from(
        self, at: datetime, keys: Iterable[tuple[str, Interval]] | None = None
    ) -> list[Gap]:
        """The feed is live (again, or for the first time) since `at`.

        Each series' floor moves to the first bar starting after `at`. The gap before it runs
        from where knowledge stopped: the interruption, or for a new series the start of the
        bar it joined mid-way (which is dropped as partial). Returns those gaps.
        """
        t = at.timestamp()
        selected = (
            self._series.values()
            if keys is None
            else [self._series[k] for k in keys if k in self._series]
        )
        gaps: list[Gap] = []
        for s in selected:
            joined = s.start_of(t)
            first_full = s.end_of(joined)
            missing = joined if s.missing_from is None else s.missing_from
            self.stats.partial_dropped += s.discard_from(missing)
            s.floor = s.since = max(first_full, missing)
            s.missing_from = None
            if missing < first_full:
                gaps.append(Gap(s.symbol, s.interval, _epoch(missing), _epoch(first_full)))
        return gaps
