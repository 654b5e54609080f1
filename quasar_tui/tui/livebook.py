"""The latest quote per symbol, conflated: however fast ticks arrive, a row holds only the newest.

The feed writes here on every tick; widgets read only the rows that changed since their last
repaint, a few times a second, so the cost of drawing does not grow with the tick rate.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from quasar_tui.store.series import Series

Key = tuple[str, str]
"""(provider, symbol)"""

_RATE_WINDOW = 1.0
STALE_SECONDS = 30.0
"""A symbol without a tick for this long no longer counts as ticking."""


@dataclass(slots=True)
class QuoteRow:
    """One symbol's conflated state. `ref` is the price that change and change % measure from;
    `common` is the common symbol the provider's symbol is mapped to, if any."""

    provider: str
    symbol: str
    common: str | None = None
    last: float | None = None
    ref: float | None = None
    bid: float | None = None
    ask: float | None = None
    volume: float = 0.0
    ticks: int = 0
    ts: datetime | None = None
    seen: float = 0.0
    seq: int = 0
    _window_start: float = 0.0
    _window_count: int = 0
    _rate: float = 0.0
    _change_pct: float | None = field(default=None, repr=False)

    @property
    def key(self) -> Key:
        return (self.provider, self.symbol)

    @property
    def name(self) -> str:
        """What a person calls it: the common symbol, else the provider's symbol."""
        return self.common or self.symbol

    @property
    def source(self) -> str:
        """The provider, with its own symbol when that differs from the common symbol."""
        return Series(self.provider, self.symbol, self.common).source

    @property
    def change(self) -> float | None:
        if self.last is None or self.ref is None:
            return None
        return self.last - self.ref

    @property
    def change_pct(self) -> float | None:
        if self._change_pct is not None:
            return self._change_pct
        if self.last is None or not self.ref:
            return None
        return (self.last - self.ref) / self.ref * 100.0

    def rate(self, now: float) -> float:
        """Ticks per second over the last window; decays towards zero when ticks stop."""
        span = now - self._window_start
        if span >= 2 * _RATE_WINDOW:
            return self._window_count / span
        return self._rate

    def age(self, now: float) -> float | None:
        return None if not self.ticks else max(0.0, now - self.seen)

    def _count(self, now: float, ticks: int) -> None:
        span = now - self._window_start
        if span >= _RATE_WINDOW:
            self._rate = self._window_count / span if self._window_start else 0.0
            self._window_start = now
            self._window_count = 0
        self._window_count += ticks
        self.ticks += ticks
        self.seen = now


class LiveBook:
    """Rows keyed by (provider, symbol) in arrival order, plus a log of which changed when."""

    def __init__(self) -> None:
        self.rows: dict[Key, QuoteRow] = {}
        self.seq = 0
        self.total_ticks = 0
        self._recent: OrderedDict[Key, int] = OrderedDict()
        self._commons: dict[Key, str] = {}

    def set_commons(self, commons: dict[Key, str]) -> bool:
        """Name rows by their common symbols (asset_mappings); True when a name changed."""
        changed = commons != self._commons
        self._commons = commons
        for key, row in self.rows.items():
            row.common = commons.get(key)
        return changed

    def __len__(self) -> int:
        return len(self.rows)

    def _row(self, provider: str, symbol: str) -> QuoteRow:
        key = (provider, symbol)
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = QuoteRow(provider, symbol, self._commons.get(key))
        return row

    def _touched(self, row: QuoteRow) -> None:
        self.seq += 1
        row.seq = self.seq
        self._recent[row.key] = self.seq
        self._recent.move_to_end(row.key)

    def apply_tick(
        self,
        provider: str,
        symbol: str,
        ts: datetime,
        price: float,
        size: float,
        bid: float | None,
        ask: float | None,
        now: float,
    ) -> None:
        """A trade: last price moves, volume accumulates; change is from the first price seen."""
        row = self._row(provider, symbol)
        row.last = price
        if row.ref is None:
            row.ref = price
        row.volume += size
        if bid is not None:
            row.bid = bid
        if ask is not None:
            row.ask = ask
        row.ts = ts
        row._count(now, 1)
        self.total_ticks += 1
        self._touched(row)

    def apply_quote(
        self,
        provider: str,
        symbol: str,
        ts: datetime,
        *,
        last: float | None,
        bid: float | None,
        ask: float | None,
        volume: float | None,
        change_pct: float | None = None,
        ref: float | None = None,
        ticks: int = 1,
        now: float,
    ) -> None:
        """A ticker update or a published quote row: fields that are given replace the old ones.

        `ticks` is how many trades this update stands for (a polled quote row covers several).
        """
        row = self._row(provider, symbol)
        if last is not None:
            row.last = last
        if ref is not None:
            row.ref = ref
        elif row.ref is None:
            row.ref = last
        if bid is not None:
            row.bid = bid
        if ask is not None:
            row.ask = ask
        if volume is not None:
            row.volume = volume
        row._change_pct = change_pct
        row.ts = ts
        row._count(now, max(ticks, 0))
        self.total_ticks += max(ticks, 0)
        self._touched(row)

    def activity(self, now: float) -> tuple[int, float]:
        """(symbols that ticked within STALE_SECONDS, ticks per second over all of them)."""
        ticking = 0
        rate = 0.0
        for row in self.rows.values():
            age = row.age(now)
            ticking += age is not None and age < STALE_SECONDS
            rate += row.rate(now)
        return ticking, rate

    def changed_since(self, seq: int) -> list[Key]:
        """Keys updated after `seq`; costs the number of changed rows, not the size of the book."""
        out: list[Key] = []
        for key in reversed(self._recent):
            if self._recent[key] <= seq:
                break
            out.append(key)
        return out
