"""Which trade ids of each symbol a live session has already seen.

A feed re-sends trades after a resubscribe (a snapshot of the latest ones), and a snapshot can
hold trades that were never delivered before, older than the newest one already seen: the
trades made while the connection was being re-established. A high-water mark would drop those
as duplicates, so the newest `WINDOW` ids of a symbol are remembered exactly, as a bitmap
(bit n set: id `newest - n` seen). An id older than the window is taken as seen: the bar it
belongs to closed long ago.
"""

from __future__ import annotations

WINDOW = 1024  # Kraken's snapshot holds at most 50 trades per pair


class TradeIds:
    """Exact duplicate detection over the newest `window` trade ids per symbol."""

    __slots__ = ("_full", "_seen", "_window")

    def __init__(self, window: int = WINDOW) -> None:
        self._window = window
        self._full = (1 << window) - 1
        self._seen: dict[str, list[int]] = {}  # symbol -> [newest id, bitmap]

    def first_time(self, symbol: str, trade_id: int) -> bool:
        """Record `trade_id`; False if it was seen before (or is too old to tell)."""
        entry = self._seen.get(symbol)
        if entry is None:
            self._seen[symbol] = [trade_id, 1]
            return True
        newest, bitmap = entry
        if trade_id > newest:
            shift = trade_id - newest
            entry[0] = trade_id
            entry[1] = ((bitmap << shift) | 1) & self._full if shift < self._window else 1
            return True
        bit = newest - trade_id
        if bit >= self._window or bitmap >> bit & 1:
            return False
        entry[1] = bitmap | 1 << bit
        return True
