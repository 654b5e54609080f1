"""`live_ticks` rows as PostgreSQL's binary COPY stream, encoded here rather than by asyncpg.

asyncpg encodes `copy_records_to_table` rows value by value through its generic codecs; on a
busy live feed that was a third of the engine's CPU per tick. Tick rows all have one shape,
and a batch repeats few (provider, symbol) pairs, so each row here is a cached head for its
series, one `struct` pack for the fixed-width values and a cached side: about half the cost.
Values are what asyncpg would send (a naive time is local time, as asyncpg reads it; only
`datetime.max` and `.min` are not sent as infinity, no trade's time), and anything that cannot
be encoded raises, so the writer refuses the batch as it would have.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

from quasar_tui.store.tables import TickRow

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


def encode_ticks(rows: Sequence[TickRow]) -> Iterator[bytes]:
    """The COPY stream of `rows`, columns in `TickRow` order: header, chunks, trailer."""
    yield _HEADER
    heads: dict[tuple[str, str], bytes] = {}
    pack, sides, epoch, unit = _FIXED.pack, _SIDES, _PG_EPOCH, _MICROSECOND
    for start in range(0, len(rows), CHUNK_ROWS):
        parts: list[bytes] = []
        add = parts.append
        for provider, symbol, ts, seq, price, size, side in rows[start : start + CHUNK_ROWS]:
            head = heads.get((provider, symbol))
            if head is None:
                head = heads[provider, symbol] = _FIELD_COUNT + _text(provider) + _text(symbol)
            try:
                micros = (ts - epoch) // unit
            except TypeError:  # naive: aware minus naive refuses
                micros = _local_micros(ts)
            add(head)
            add(pack(8, micros, 8, seq, 8, price, 8, size))
            add(sides.get(side) or _text(cast(str, side)))  # None is in _SIDES
        yield b"".join(parts)
    yield _TRAILER


async def tick_copy_source(rows: Sequence[TickRow]) -> AsyncIterator[bytes]:
    """`encode_ticks` as the async source asyncpg's `copy_to_table` reads."""
    for chunk in encode_ticks(rows):
        yield chunk
