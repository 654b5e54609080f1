"""The tables the engine's writer fills: their rows, series keys and SQL.

Rows are named tuples so binary COPY takes them as they are; a table's series key is the
leading columns that name one series (provider, symbol and, for bars, interval) and its
position is where a row lies within that series (bar start; tick time and sequence).
Table names cannot be bound parameters, so each table's statements are fixed text built once
at import from the names below; values are always bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

import asyncpg


class BarRow(NamedTuple):
    """A `historical_data` row; `ts` is the bar start, an aware datetime."""

    provider: str
    symbol: str
    interval: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


class LiveBarRow(NamedTuple):
    """A `live_data` row: a bar aggregated from trades (or a feed's closed candle)."""

    provider: str
    symbol: str
    interval: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int | None  # None: a refilled candle whose provider gave no count


class TickRow(NamedTuple):
    """A `live_ticks` row; `seq` is the provider's trade id or the session's counter."""

    provider: str
    symbol: str
    ts: datetime
    seq: int
    price: float
    size: float
    side: str | None


SeriesKey = tuple[str, ...]  # (provider, symbol, interval) for bars, (provider, symbol) for ticks


@dataclass(slots=True)
class Span:
    """Where a batch's rows of one series lie: lowest and highest position, how many rows."""

    low: Any
    high: Any
    count: int


Spans = dict[SeriesKey, Span]

#: The primary key of every table is its first four columns.
primary_key: Callable[[tuple[Any, ...]], tuple[Any, ...]] = itemgetter(0, 1, 2, 3)


class Series(NamedTuple):
    """A series key by name (`interval` is None for ticks)."""

    provider: str
    symbol: str
    interval: str | None


@dataclass(frozen=True)
class TableSpec:
    """How one table is written: its columns, how rows map to a series, and its SQL."""

    name: str
    columns: tuple[str, ...]
    key_width: int
    series: Callable[[Any], SeriesKey]
    position: Callable[[Any], Any]
    position_ts: Callable[[Any], datetime]  # the time of a position (for BarsWritten)
    stage: str
    create_stage: str
    merge: str
    last_rows: str
    # How long a short batch may wait for more rows, in seconds (capped by the writer's
    # flush_seconds): fewer commits against rows stored sooner.
    linger: float = math.inf

    def position_of(self, record: asyncpg.Record) -> Any:
        """The stored high-water mark in a `last_rows` record (None for a new series)."""
        first = record[self.key_width]
        if first is None:
            return None
        rest = tuple(record)[self.key_width :]
        return first if len(rest) == 1 else rest

    def named(self, key: SeriesKey) -> Series:
        provider, symbol, *interval = key
        return Series(provider, symbol, interval[0] if interval else None)


def _same(position: datetime) -> datetime:
    return position


def _bar_table(name: str, columns: tuple[str, ...], *, linger: float) -> TableSpec:
    """A bar table's statements: a re-fetched bar replaces the stored one when it differs."""
    listed = ", ".join(columns)
    values = columns[4:]
    stage = f"quasar_stage_{name}"
    return TableSpec(
        name=name,
        columns=columns,
        key_width=3,
        series=itemgetter(0, 1, 2),
        position=itemgetter(3),
        position_ts=_same,
        stage=stage,
        create_stage=f"""
            CREATE TEMP TABLE IF NOT EXISTS {stage}
                (LIKE {name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS""",
        merge=f"""
            INSERT INTO {name} AS t ({listed})
            SELECT {listed} FROM {stage}
            ON CONFLICT (provider, symbol, interval, ts) DO UPDATE
               SET {", ".join(f"{c} = excluded.{c}" for c in values)}
             WHERE ({", ".join(f"t.{c}" for c in values)}) IS DISTINCT FROM
                   ({", ".join(f"excluded.{c}" for c in values)})""",
        last_rows=f"""
            SELECT k.provider, k.symbol, k.interval, last.ts
              FROM unnest($1::text[], $2::text[], $3::text[]) AS k(provider, symbol, interval)
              LEFT JOIN LATERAL (
                    SELECT b.ts FROM {name} b
                     WHERE b.provider = k.provider AND b.symbol = k.symbol
                       AND b.interval = k.interval
                     ORDER BY b.ts DESC LIMIT 1) AS last ON true""",
        linger=linger,
    )


HISTORICAL = _bar_table("historical_data", BarRow._fields, linger=math.inf)
# Live bars come all at once as they close: waiting for more would only delay them.
LIVE = _bar_table("live_data", LiveBarRow._fields, linger=0.0)

# Live bars rebuilt from the stored ticks, in time order, when a trade arrived after its bar
# was written: $1 provider, then per bar symbol, interval, start and end.
LIVE_FROM_TICKS = """
    INSERT INTO live_data AS t (provider, symbol, interval, ts, open, high, low, close, volume,
                                trades)
    SELECT $1, k.symbol, k.interval, k.start,
           (array_agg(x.price ORDER BY x.ts, x.seq))[1], max(x.price), min(x.price),
           (array_agg(x.price ORDER BY x.ts DESC, x.seq DESC))[1], sum(x.size), count(*)
      FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
           AS k(symbol, interval, start, stop)
      JOIN live_ticks x
        ON x.provider = $1 AND x.symbol = k.symbol AND x.ts >= k.start AND x.ts < k.stop
     GROUP BY k.symbol, k.interval, k.start
    ON CONFLICT (provider, symbol, interval, ts) DO UPDATE
       SET open = excluded.open, high = excluded.high, low = excluded.low,
           close = excluded.close, volume = excluded.volume, trades = excluded.trades
     WHERE (t.open, t.high, t.low, t.close, t.volume, t.trades) IS DISTINCT FROM
           (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume,
            excluded.trades)"""

TICKS = TableSpec(
    name="live_ticks",
    columns=TickRow._fields,
    key_width=2,
    series=itemgetter(0, 1),
    position=itemgetter(2, 3),
    position_ts=itemgetter(0),
    stage="quasar_stage_live_ticks",
    create_stage="""
        CREATE TEMP TABLE IF NOT EXISTS quasar_stage_live_ticks
            (LIKE live_ticks INCLUDING DEFAULTS) ON COMMIT DELETE ROWS""",
    merge="""
        INSERT INTO live_ticks (provider, symbol, ts, seq, price, size, side)
        SELECT provider, symbol, ts, seq, price, size, side FROM quasar_stage_live_ticks
        ON CONFLICT (provider, symbol, ts, seq) DO NOTHING""",
    last_rows="""
        SELECT k.provider, k.symbol, last.ts, last.seq
          FROM unnest($1::text[], $2::text[]) AS k(provider, symbol)
          LEFT JOIN LATERAL (
                SELECT t.ts, t.seq FROM live_ticks t
                 WHERE t.provider = k.provider AND t.symbol = k.symbol
                 ORDER BY t.ts DESC, t.seq DESC LIMIT 1) AS last ON true""",
    # Ticks come steadily: a short wait still makes batches of hundreds at a few thousand a
    # second, and a trade is stored within ~0.1 s of arriving.
    linger=0.05,
)

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (HISTORICAL, LIVE, TICKS)}
BAR_TABLES = frozenset({HISTORICAL.name, LIVE.name})
