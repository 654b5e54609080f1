"""Which trade ids of each symbol a live session has already seen.

A feed re-sends trades after a resubscribe (a snapshot of the latest ones), and a snapshot can
hold trades that were never delivered before, older than the newest one already seen: the
trades made while the connection was being re-established. A high-water mark would drop those
as duplicates, so the newest `WINDOW` ids of a symbol are remembered exactly, as a bitmap
(bit n set: id `newest - n` seen). An id older than the window is taken as seen: the bar it
belongs to closed long ago.

When ids count up by one, a jump past the newest id means trades that were never received;
`on_skip` hears of each such run, with the newest id and time seen before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

WINDOW = 1024  # Kraken's snapshot holds at most 50 trades per pair

#: (symbol, newest id seen, its time, the id that came after the skipped ones)
OnSkip = Callable[[str, int, datetime, int], None]


class TradeIds:
    """Exact duplicate detection over the newest `window` trade ids per symbol."""

    __slots__ = ("_full", "_on_skip", "_seen", "_window")

    def __init__(self, window: int = WINDOW, on_skip: OnSkip | None = None) -> None:
        self._window = window
        self._full = (1 << window) - 1
        self._on_skip = on_skip
        self._seen: dict[str, list] = {}  # symbol -> [newest id, bitmap, newest id's time]

    def first_time(self, symbol: str, trade_id: int, ts: datetime) -> bool:
        """Record `trade_id` (made at `ts`); False if it was seen before (or is too old to
        tell)."""
        entry = self._seen.get(symbol)
        if entry is None:
            self._seen[symbol] = [trade_id, 1, ts]
            return True
        newest, bitmap, newest_ts = entry
        if trade_id > newest:
            shift = trade_id - newest
            if shift > 1 and self._on_skip is not None:
                self._on_skip(symbol, newest, newest_ts, trade_id)
            entry[0], entry[2] = trade_id, ts
            entry[1] = ((bitmap << shift) | 1) & self._full if shift < self._window else 1
            return True
        bit = newest - trade_id
        if bit >= self._window or bitmap >> bit & 1:
            return False
        entry[1] = bitmap | 1 << bit
        return True

    def seed(self, symbol: str, trade_id: int, ts: datetime) -> None:
        """Start a symbol from a trade stored earlier (a restart), unless it has newer ones."""
        if symbol not in self._seen:
            self._seen[symbol] = [trade_id, 1, ts]

    def forget(self, symbols: Iterable[str]) -> None:
        """Symbols no longer subscribed: subscribed again later, they start afresh instead of
        asking for every trade made in between."""
        for symbol in symbols:
            self._seen.pop(symbol, None)
