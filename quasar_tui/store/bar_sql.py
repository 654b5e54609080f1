"""The SQL that reads bars of one series at one interval: as stored, or derived in the
database (first open, highest high, lowest low, last close, summed volume and trades) from
the merged stored bars or from rollups (store/rollups.py).

Two row sources share the statements below, each with its own parameters:
- merged stored bars: $1 provider, $2 symbol, $3 interval, $4 / $5 the range, $6 / $7 read
  live / historical; then $8 the limit and $9 the bucket length;
- merged stored bars less those carrying a flag of the mask $9 (a reader's `min_quality`):
  as merged, then $8 the limit, $9 the mask and $10 the bucket length;
- rollups: $1 provider, $2 symbol, $3 the base interval, $4 / $5 the range, $6 the rollup's
  interval; then $7 the limit and $8 the bucket length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quasar_tui.core.intervals import Interval

# One series' bars at one stored interval, live preferred over historical at the same ts
# (also the input of the quality pass, quality/flags.py).
# $6 / $7 switch the live and historical halves on or off. Historical bars that a live bar
# replaces are skipped with a hashed look-up of the (few) live timestamps, so the merge needs
# no sort of the whole range.
MERGED_BARS = """
    SELECT ts, open, high, low, close, volume, trades FROM live_data
     WHERE provider = $1 AND symbol = $2 AND interval = $3
       AND ts >= $4 AND ts < $5 AND $6::boolean
    UNION ALL
    SELECT h.ts, h.open, h.high, h.low, h.close, h.volume, h.trades FROM historical_data h
     WHERE h.provider = $1 AND h.symbol = $2 AND h.interval = $3
       AND h.ts >= $4 AND h.ts < $5 AND $7::boolean
       AND NOT ($6::boolean AND EXISTS (
           SELECT 1 FROM live_data l
            WHERE l.provider = $1 AND l.symbol = $2 AND l.interval = $3 AND l.ts = h.ts))
"""

CLEAN_BARS = f"""
    SELECT * FROM ({MERGED_BARS}) AS unfiltered
     WHERE NOT EXISTS (
           SELECT 1 FROM bar_flags f
            WHERE f.provider = $1 AND f.symbol = $2 AND f.interval = $3
              AND f.ts = unfiltered.ts AND f.flags & $9::smallint <> 0)
"""

ROLLUP_ROWS = """
    SELECT ts, open, high, low, close, volume, trades FROM bar_rollups
     WHERE provider = $1 AND symbol = $2 AND base = $3 AND interval = $6
       AND ts >= $4 AND ts < $5
"""

# Bucket edges: weeks from a Monday 00:00 UTC, months by the calendar in UTC.
_WEEK_ORIGIN = "2000-01-03 00:00+00"


def _bucket(wanted: Interval, step: str) -> str:
    if wanted is Interval.MO1:
        return "date_trunc('month', ts, 'UTC')"
    return f"date_bin({step}::interval, ts, '{_WEEK_ORIGIN}'::timestamptz)"


@dataclass(frozen=True)
class _Rows:
    """A row source and where its limit and bucket-length parameters are."""

    sql: str
    limit: str
    step: str


ROWS = {
    "merged": _Rows(MERGED_BARS, "$8", "$9"),
    "clean": _Rows(CLEAN_BARS, "$8", "$10"),
    "rollup": _Rows(ROLLUP_ROWS, "$7", "$8"),
}
RowSource = Literal["merged", "clean", "rollup"]
Order = Literal["newest", "oldest"]
_ORDERS = {"newest": "DESC", "oldest": "ASC"}


def stored(rows: RowSource, first: Order) -> str:
    """The rows as they are, the newest or the oldest `limit` first (a NULL limit: all)."""
    source = ROWS[rows]
    return f"""
    SELECT ts, open, high, low, close, volume, trades FROM ({source.sql}) AS merged
     ORDER BY ts {_ORDERS[first]}
     LIMIT {source.limit}"""


def derived(rows: RowSource, wanted: Interval, first: Order) -> str:
    """The rows grouped into `wanted` bars (the bucket length is a parameter, so one
    statement serves every fixed interval)."""
    source = ROWS[rows]
    return f"""
    SELECT {_bucket(wanted, source.step)} AS ts,
           (array_agg(open ORDER BY ts))[1] AS open,
           max(high) AS high,
           min(low) AS low,
           (array_agg(close ORDER BY ts DESC))[1] AS close,
           sum(volume) AS volume,
           -- a count only where every source bar had one
           CASE WHEN count(trades) = count(*) THEN sum(trades)::bigint END AS trades
      FROM ({source.sql}) AS merged
     GROUP BY 1
     ORDER BY 1 {_ORDERS[first]}
     LIMIT {source.limit}"""


def divides(finer: Interval, coarser: Interval) -> bool:
    """Whether bars of `finer` tile bars of `coarser` exactly (a week does not tile a month)."""
    if finer.seconds >= coarser.seconds:
        return False
    if coarser is Interval.MO1:
        return 86_400 % finer.seconds == 0
    return coarser.seconds % finer.seconds == 0
