"""`live_ticks` rows as PostgreSQL's binary COPY stream, encoded here rather than by asyncpg.

asyncpg encodes `copy_records_to_table` rows value by value through its generic codecs; on a
busy live feed that was a third of the engine's CPU per tick. Tick rows all have one shape,
and a batch repeats few (provider, symbol) pairs, so each row here is a cached head for its
series, one `struct` pack for the fixed-width values and a cached side: about half the cost.
Values are what asyncpg would send (a naive time is local time, as asyncpg reads it; only
`datetime.max` and `.min` are not sent as infinity, no trade's time), and anything that cannot
be encoded raises, so the writer refuses the batch as it would have. As it visits every row,
the encoder also notes where each series' rows lie: the writer's report of what it wrote.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

from quasar_tui.store.tables import Span, Spans, TickRow

CHUNK_ROWS = 4096  # rows per chunk handed to the connection: it may turn the loop between

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = _SIGNATURE + struct.pack("!ii", 0, 0)  # no flags, no header extension
_TRAILER = struct.pack("!h", -1)
_LENGTH = struct.Struct("!i")
_NULL = _LENGTH.pack(-1)
_FIELD_COUNT = struct.pack("!h", len(TickRow._fields))
# ts, seq, price, size: each a length, then timestamptz and int8 as int64, float8 as double.
_FIXED = struct.Struct("!iqiqidid")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _text(value: str) -> bytes:
    data = value.encode()
    return _LENGTH.pack(len(data)) + data


_SIDES: dict[str | None, bytes] = {None: _NULL, "buy": _text("buy"), "sell": _text("sell")}


def _local_micros(ts: datetime) -> int:
    """Microseconds since PostgreSQL's epoch of a naive time, read as local time."""
    return (ts.astimezone(UTC) - _PG_EPOCH) // _MICROSECOND


class _Series:
    """One (provider, symbol) of a batch: its encoded head, its lowest and highest row."""

    __slots__ = ("count", "head", "high", "high_us", "low", "low_us")

    def __init__(self, head: bytes, micros: int, seq: int, ts: datetime) -> None:
        self.head = head
        self.low_us = self.high_us = micros
        self.low = self.high = (ts, seq)
        self.count = 0


class TickCopy:
    """The COPY stream of a batch of `live_ticks` rows, for asyncpg's `copy_to_table`.

    Once the stream has been read, `spans` says where each series' rows lie (lowest and
    highest (ts, seq), how many): the encoder visits every row anyway, so the writer need not
    summarise the batch in a pass of its own before the COPY can start.
    """

    def __init__(self, rows: Sequence[TickRow]) -> None:
        self.rows = rows
        self._series: dict[tuple[str, str], _Series] = {}

    @property
    def spans(self) -> Spans:
        return {key: Span(s.low, s.high, s.count) for key, s in self._series.items()}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks():
            yield chunk

    def chunks(self) -> Iterator[bytes]:
        """Header, chunks of CHUNK_ROWS rows in `TickRow` column order, trailer."""
        yield _HEADER
        rows, series = self.rows, self._series
        pack, sides, epoch, unit = _FIXED.pack, _SIDES, _PG_EPOCH, _MICROSECOND
        for start in range(0, len(rows), CHUNK_ROWS):
            parts: list[bytes] = []
            add = parts.append
            for provider, symbol, ts, seq, price, size, side in rows[start : start + CHUNK_ROWS]:
                try:
                    micros = (ts - epoch) // unit
                except TypeError:  # naive: aware minus naive refuses
                    micros = _local_micros(ts)
                s = series.get((provider, symbol))
                if s is None:
                    head = _FIELD_COUNT + _text(provider) + _text(symbol)
                    s = series[provider, symbol] = _Series(head, micros, seq, ts)
                elif micros > s.high_us or (micros == s.high_us and seq > s.high[1]):
                    s.high_us, s.high = micros, (ts, seq)
                elif micros < s.low_us or (micros == s.low_us and seq < s.low[1]):
                    s.low_us, s.low = micros, (ts, seq)
                s.count += 1
                add(s.head)
                add(pack(8, micros, 8, seq, 8, price, 8, size))
                add(sides.get(side) or _text(cast(str, side)))  # None is in _SIDES
            yield b"".join(parts)
        yield _TRAILER
