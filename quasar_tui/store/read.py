"""The read layer: bars of a series at any interval, and its ticks.

An interval is read as stored when it was collected, otherwise derived in the database from a
stored interval that divides it (first open, highest high, lowest low, last close, summed
volume and trades): the one whose bars span the most of the range, the finest among equals.
1h and 1d, and what they tile, are read from rollups (rollups.py) when both sources are read.
Historical and live bars of a series are merged; where both hold a timestamp, the live bar
wins, since it was built from every trade.

`complete = False` marks a bar that cannot be trusted as final yet: it has not ended, the
collected source bars do not reach its end yet, it overlaps a gap the engine recorded and has
not filled, or it overlaps the span between where historical bars stop and live bars begin.
A source bar that is simply absent is not held against a bucket: live bars exist only for
minutes with trades, and markets close; spans that should hold bars and do not are what the
gaps table records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from quasar_tui.core.bar_quality import Flag, failing
from quasar_tui.core.clock import Clock, utc_now
from quasar_tui.core.errors import InvalidInputError, NotFoundError
from quasar_tui.core.intervals import Interval
from quasar_tui.core.series import SeriesName
from quasar_tui.store import bar_sql, rollups
from quasar_tui.store.bar_sql import MERGED_BARS, Order, RowSource, divides
from quasar_tui.store.bars import FAR_FUTURE, FAR_PAST
from quasar_tui.store.database import Database
from quasar_tui.store.series import Series, resolve

Source = Literal["historical", "live", "both"]
SOURCES: tuple[Source, ...] = ("historical", "live", "both")

# $4 / $5: look in live_data / historical_data.
# One probe of the primary key per interval and table: min(ts) is read from the index's edge,
# where an EXISTS may be planned as a scan that reads the whole table when the answer is no.
_STORED_INTERVALS = """
    SELECT i FROM unnest($3::text[]) AS i
     WHERE ($5::boolean AND (SELECT min(ts) FROM historical_data
                              WHERE provider = $1 AND symbol = $2 AND interval = i) IS NOT NULL)
        OR ($4::boolean AND (SELECT min(ts) FROM live_data
                              WHERE provider = $1 AND symbol = $2 AND interval = i) IS NOT NULL)
"""

# How far the collected source bars reach, whatever range was asked for: the newest of each
# table ($4 / $5: read live_data / historical_data), and where live bars begin.
_SOURCE_EDGES = """
    SELECT (SELECT max(ts) FROM live_data
             WHERE provider = $1 AND symbol = $2 AND interval = $3 AND $4::boolean) AS live_last,
           (SELECT min(ts) FROM live_data
             WHERE provider = $1 AND symbol = $2 AND interval = $3 AND $4::boolean) AS live_first,
           (SELECT max(ts) FROM historical_data
             WHERE provider = $1 AND symbol = $2 AND interval = $3 AND $5::boolean)
               AS historical_last
"""

# How much of a range each of the intervals $3 covers: its first and last stored bar there
# ($6 / $7: look in live_data / historical_data); four index probes per interval.
_COVERAGE = """
    SELECT i, least(lf, hf) AS first, greatest(ll, hl) AS last
      FROM unnest($3::text[]) AS i, LATERAL (SELECT
           (SELECT min(ts) FROM live_data WHERE provider = $1 AND symbol = $2 AND interval = i
               AND ts >= $4 AND ts < $5 AND $6::boolean) AS lf,
           (SELECT max(ts) FROM live_data WHERE provider = $1 AND symbol = $2 AND interval = i
               AND ts >= $4 AND ts < $5 AND $6::boolean) AS ll,
           (SELECT min(ts) FROM historical_data WHERE provider = $1 AND symbol = $2
               AND interval = i AND ts >= $4 AND ts < $5 AND $7::boolean) AS hf,
           (SELECT max(ts) FROM historical_data WHERE provider = $1 AND symbol = $2
               AND interval = i AND ts >= $4 AND ts < $5 AND $7::boolean) AS hl) AS ends
"""

_OPEN_GAPS = """
    SELECT start_ts, end_ts FROM gaps
     WHERE provider = $1 AND symbol = $2 AND interval = $3 AND resolved_at IS NULL
       AND start_ts < $5 AND end_ts > $4
"""

# Where consecutive stored bars are further apart than one interval, and the first and last
# stored bar: the raw material of a gap report.
_JUMPS = f"""
    SELECT prev_ts, ts FROM (
        SELECT ts, lag(ts) OVER (ORDER BY ts) AS prev_ts FROM ({MERGED_BARS}) AS merged) AS steps
     WHERE ts - prev_ts > $8::interval
     ORDER BY ts
"""
_EXTENT = f"""
    SELECT min(ts) AS first, max(ts) AS last, count(*) AS bars FROM ({MERGED_BARS}) AS merged
"""

_ALL_OPEN_GAPS = """
    SELECT provider, symbol, interval, mode, start_ts, end_ts, reason, attempts, last_error
      FROM gaps
     WHERE resolved_at IS NULL
       AND ($1::text IS NULL OR provider = $1) AND ($2::text IS NULL OR symbol = $2)
     ORDER BY provider, symbol, interval, start_ts
"""

_TICKS = """
    SELECT ts, seq, price, size, side FROM live_ticks
     WHERE provider = $1 AND symbol = $2 AND ts >= $3 AND ts < $4
     ORDER BY ts DESC, seq DESC
     LIMIT $5
"""

# The live ticks of a series from $3 on, as one bar.
_FORMING = """
    SELECT (array_agg(price ORDER BY ts, seq))[1] AS open,
           max(price) AS high,
           min(price) AS low,
           (array_agg(price ORDER BY ts DESC, seq DESC))[1] AS close,
           sum(size) AS volume,
           count(*) AS trades
      FROM live_ticks
     WHERE provider = $1 AND symbol = $2 AND ts >= $3
"""

MAX_LIMIT = 1_000_000
STREAM_BATCH = 10_000


@dataclass(frozen=True)
class ReadBar:
    """One bar as read back; `trades` is None where the provider gave no count."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int | None
    complete: bool


@dataclass(frozen=True)
class SeriesRead:
    """Which series a read is serving, at which interval, and from which stored interval."""

    series: Series
    interval: Interval
    source_interval: Interval

    @property
    def derived(self) -> bool:
        return self.source_interval is not self.interval


@dataclass(frozen=True)
class BarsRead(SeriesRead):
    """Bars of one series, oldest first, and how they were obtained; `reach` is where the
    stored source bars end (ticks after it are not in any bar yet)."""

    bars: list[ReadBar]
    reach: datetime = FAR_PAST


@dataclass(frozen=True)
class BarStream(SeriesRead):
    """Every bar of a range, oldest first, in batches: for exports too large to hold."""

    batches: AsyncGenerator[list[ReadBar], None]


@dataclass(frozen=True)
class _Plan:
    """One read decided: the query and its arguments."""

    series: Series
    wanted: Interval
    base: Interval
    source: Source
    low: datetime
    high: datetime
    failing: Flag

    @property
    def rollup(self) -> Interval | None:
        """The rollup read instead of the source bars (reads of both sources only, and not
        filtered by quality: a rollup holds every bar)."""
        if self.source != "both" or self.base is self.wanted or self.failing:
            return None
        return rollups.rollup_level(self.wanted, self.base)

    def query(self, first: Order, limit: int | None) -> tuple[str, list[object]]:
        """The statement and its arguments (see store/bar_sql.py for their order)."""
        key: list[object] = [
            self.series.provider,
            self.series.symbol,
            self.base.value,
            self.low,
            self.high,
        ]
        rows: RowSource
        args: list[object]
        if (level := self.rollup) is not None:
            rows, args, have = "rollup", [*key, level.value, limit], level
        else:
            switches = [self.source != "historical", self.source != "live"]
            rows, args, have = "merged", [*key, *switches, limit], self.base
            if self.failing:
                rows, args = "clean", [*args, int(self.failing)]
        if have is self.wanted:
            return bar_sql.stored(rows, first), args
        if self.wanted is Interval.MO1:  # calendar months: no bucket length
            return bar_sql.derived(rows, self.wanted, first), args
        return bar_sql.derived(rows, self.wanted, first), [*args, self.wanted.delta]

    async def prepare(self, db: Database) -> None:
        """Bring the rollup this read uses up to date."""
        if self.rollup is not None:
            await rollups.refresh(db, self.series.provider, self.series.symbol, self.base)

    async def finality(self, conn: asyncpg.Pool | asyncpg.Connection, now: datetime) -> _Finality:
        key = (self.series.provider, self.series.symbol, self.base.value)
        gaps = [
            (g["start_ts"], g["end_ts"])
            for g in await conn.fetch(_OPEN_GAPS, *key, self.low, self.high)
        ]
        edges = await conn.fetchrow(
            _SOURCE_EDGES, *key, self.source != "historical", self.source != "live"
        )
        assert edges is not None
        newest = max((t for t in (edges["live_last"], edges["historical_last"]) if t), default=None)
        # Historical bars that stop before live bars begin (a backfill still running, or
        # stopped): the span between holds no bars yet, though it should.
        historical_end = edges["historical_last"] and self.base.next_start(edges["historical_last"])
        if historical_end and edges["live_first"] and historical_end < edges["live_first"]:
            gaps.append((historical_end, edges["live_first"]))
        return _Finality(
            reach=min(now, self.base.next_start(newest)) if newest else FAR_PAST, gaps=gaps
        )


@dataclass(frozen=True)
class _Finality:
    """What decides whether a bar is final: how far the source bars reach, and unfilled gaps."""

    reach: datetime
    gaps: list[tuple[datetime, datetime]]

    def bars(self, rows: list[asyncpg.Record], wanted: Interval) -> list[ReadBar]:
        """The rows as bars, each marked complete or not: a year of hours is 8,760 of them,
        so the end of a fixed-length bar is its start plus the length, not calendar maths."""
        step = None if wanted is Interval.MO1 else wanted.delta
        reach, gaps = self.reach, self.gaps
        bars = []
        for row in rows:
            start = row["ts"]
            end = start + step if step is not None else wanted.next_start(start)
            complete = end <= reach and not (
                gaps and any(g_start < end and g_end > start for g_start, g_end in gaps)
            )
            bars.append(_read_bar(start, row, complete))
        return bars


@dataclass(frozen=True)
class ReadTick:
    ts: datetime
    seq: int
    price: float
    size: float
    side: str | None


@dataclass(frozen=True)
class TicksRead:
    series: Series
    ticks: list[ReadTick]


@dataclass(frozen=True)
class Extent:
    """What is stored of a series at one interval: first and last bar start, how many bars,
    and the pairs of consecutive bars further apart than one interval."""

    first: datetime
    last: datetime
    bars: int
    jumps: list[tuple[datetime, datetime]]


@dataclass(frozen=True)
class OpenGap:
    """A span that should hold bars and does not yet; the engine retries it."""

    provider: str
    symbol: str
    interval: str
    mode: str
    start_ts: datetime
    end_ts: datetime
    reason: str
    attempts: int
    last_error: str | None


def source_interval(wanted: Interval, stored: set[Interval]) -> Interval | None:
    """`wanted` itself when stored, else the finest stored interval that divides it."""
    if wanted in stored:
        return wanted
    finer = [i for i in stored if divides(i, wanted)]
    return min(finer, key=lambda i: i.seconds) if finer else None


Judge = Callable[[Series, Interval], Awaitable[object]]
"""Brings the quality flags of a series at a stored interval up to date (quality/flags.py)."""


class Reader:
    """Reads series by name; `now` decides which bars are still forming.

    `min_quality` (0 to 1, core/bar_quality.py) leaves out the stored bars whose flags score
    below it; a derived bar is built from the source bars that are left. With a `judge`, the
    flags of the series read are brought up to date first; without one, bars no quality pass
    has seen yet count as unflagged.
    """

    def __init__(self, db: Database, now: Clock = utc_now, judge: Judge | None = None) -> None:
        self.db = db
        self.now = now
        self.judge = judge

    async def stored_intervals(self, series: Series, source: Source = "both") -> set[Interval]:
        """Intervals stored for `series` in the tables `source` reads."""
        rows = await self.db.fetch(
            _STORED_INTERVALS,
            series.provider,
            series.symbol,
            [i.value for i in Interval],
            source != "historical",
            source != "live",
        )
        return {Interval(r["i"]) for r in rows}

    async def bars(
        self,
        name: str | SeriesName,
        interval: Interval | str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        provider: str | None = None,
        source: Source = "both",
        limit: int = 10_000,
        min_quality: float | None = None,
    ) -> BarsRead:
        """The newest `limit` bars with `start <= ts < end`, oldest first.

        A common symbol is served by the first provider in its order whose stored bars can
        give `interval`; NotFoundError says what is stored when none can.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInputError(f"limit {limit} is out of range: use 1 to {MAX_LIMIT:,}")
        plan = await self._plan(name, interval, start, end, provider, source, min_quality)
        query, args = plan.query("newest", limit)
        rows = await self.db.fetch(query, *args)
        rows.reverse()
        finality = await plan.finality(self.db.pool, self.now())
        bars = finality.bars(rows, plan.wanted)
        return BarsRead(plan.series, plan.wanted, plan.base, bars, finality.reach)

    async def with_forming(self, read: BarsRead) -> BarsRead:
        """`read` with the bar now forming brought up to the last stored tick: the ticks after
        the stored source bars end, merged into the forming bar (or making it). Ticks before
        the forming bar's start that no bar holds yet are left out: their bar shows as
        incomplete already."""
        now = self.now()
        start = read.interval.floor(now)
        row = await self.db.fetchrow(
            _FORMING, read.series.provider, read.series.symbol, max(read.reach, start)
        )
        if row is None or not row["trades"]:
            return read
        last = read.bars[-1] if read.bars and read.bars[-1].ts == start else None
        if last is None:
            bar = _read_bar(start, row, complete=False)
            return dataclasses.replace(read, bars=[*read.bars, bar])
        merged = ReadBar(
            ts=start,
            open=last.open,
            high=max(last.high, row["high"]),
            low=min(last.low, row["low"]),
            close=row["close"],
            volume=last.volume + row["volume"],
            trades=None if last.trades is None else last.trades + row["trades"],
            complete=False,
        )
        return dataclasses.replace(read, bars=[*read.bars[:-1], merged])

    @asynccontextmanager
    async def stream(
        self,
        name: str | SeriesName,
        interval: Interval | str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        provider: str | None = None,
        source: Source = "both",
        batch: int = STREAM_BATCH,
        min_quality: float | None = None,
    ) -> AsyncIterator[BarStream]:
        """Every bar with `start <= ts < end`, oldest first, `batch` at a time: the series
        chosen as `bars` chooses it, read in one snapshot so an export is consistent."""
        plan = await self._plan(name, interval, start, end, provider, source, min_quality)
        query, args = plan.query("oldest", None)
        async with (
            self.db.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            finality = await plan.finality(conn, self.now())
            cursor = await conn.cursor(query, *args)

            async def batches() -> AsyncGenerator[list[ReadBar], None]:
                while rows := await cursor.fetch(batch):
                    yield finality.bars(rows, plan.wanted)

            yield BarStream(plan.series, plan.wanted, plan.base, batches())

    async def _plan(
        self,
        name: str | SeriesName,
        interval: Interval | str,
        start: datetime | None,
        end: datetime | None,
        provider: str | None,
        source: Source,
        min_quality: float | None = None,
    ) -> _Plan:
        """The series (first in the name's provider order that can give `interval` from the
        tables `source` reads), the stored interval to read, and the range; its rollup (if
        it reads one) brought up to date."""
        wanted = interval if isinstance(interval, Interval) else Interval.parse(interval)
        if source not in SOURCES:
            raise InvalidInputError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")
        mask = failing(min_quality) if min_quality is not None else Flag(0)
        # Open or far-off ends mean "everything": no bucket arithmetic near the calendar's end.
        low = wanted.floor(start) if start and start > FAR_PAST else FAR_PAST
        high = _ceil(wanted, end) if end and end < FAR_FUTURE else FAR_FUTURE
        offers: list[str] = []
        for series in await resolve(self.db, name, provider):
            stored = await self.stored_intervals(series, source)
            base = await self._widest(series, wanted, stored, source, low, high)
            if base is not None:
                if mask and self.judge is not None:
                    await self.judge(series, base)
                plan = _Plan(series, wanted, base, source, low, high, mask)
                await plan.prepare(self.db)
                return plan
            if stored:
                offers.append(f"{series.key} has {' '.join(sorted(i.value for i in stored))}")
        what = "; ".join(offers) if offers else "nothing is stored for it yet"
        kind = "" if source == "both" else f"{source} "
        raise NotFoundError(f"no {kind}{wanted.value} bars can be read for {name}: {what}")

    async def _widest(
        self,
        series: Series,
        wanted: Interval,
        stored: set[Interval],
        source: Source,
        low: datetime,
        high: datetime,
    ) -> Interval | None:
        """`wanted` itself when stored, else of the stored intervals that divide it the one
        whose bars span the most of the range, the finest among equals: a few live 1min bars
        do not hide days of 1h bars from a 4h read, and a read never mixes two intervals."""
        if wanted in stored:
            return wanted
        finer = sorted((i for i in stored if divides(i, wanted)), key=lambda i: i.seconds)
        if len(finer) < 2:
            return finer[0] if finer else None
        rows = await self.db.fetch(
            _COVERAGE,
            series.provider,
            series.symbol,
            [i.value for i in finer],
            low,
            high,
            source != "historical",
            source != "live",
        )
        spans = {
            Interval(r["i"]): Interval(r["i"]).next_start(r["last"]) - r["first"]
            for r in rows
            if r["first"] is not None
        }
        if not spans:  # nothing in the range: the finest, as when reading everything
            return finer[0]
        return max(finer, key=lambda i: (spans.get(i, timedelta(0)), -i.seconds))

    async def ticks(
        self,
        name: str | SeriesName,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        provider: str | None = None,
        limit: int = 100_000,
    ) -> TicksRead:
        """The newest `limit` stored ticks with `start <= ts < end`, oldest first."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInputError(f"limit {limit} is out of range: use 1 to {MAX_LIMIT:,}")
        series = (await resolve(self.db, name, provider))[0]
        rows = await self.db.fetch(
            _TICKS, series.provider, series.symbol, start or FAR_PAST, end or FAR_FUTURE, limit
        )
        ticks = [ReadTick(r["ts"], r["seq"], r["price"], r["size"], r["side"]) for r in rows]
        ticks.reverse()
        return TicksRead(series, ticks)

    async def extent(self, series: Series, interval: Interval) -> Extent | None:
        """Stored bars of `series` at `interval` (both tables), or None when there are none."""
        args = [series.provider, series.symbol, interval.value, FAR_PAST, FAR_FUTURE, True, True]
        row = await self.db.fetchrow(_EXTENT, *args)
        if row is None or not row["bars"]:
            return None
        # Months differ in length: a step of more than 31 days is a jump, shorter ones are not.
        step = timedelta(days=31) if interval is Interval.MO1 else interval.delta
        jumps = await self.db.fetch(_JUMPS, *args, step)
        return Extent(row["first"], row["last"], row["bars"], [(j[0], j[1]) for j in jumps])

    async def gaps(
        self, name: str | SeriesName | None = None, *, provider: str | None = None
    ) -> list[OpenGap]:
        """Unfilled gaps of one series (every provider it resolves to), or of all series."""
        if name is None:
            rows = await self.db.fetch(_ALL_OPEN_GAPS, provider, None)
            return [OpenGap(**dict(r)) for r in rows]
        found: list[OpenGap] = []
        for series in await resolve(self.db, name, provider):
            rows = await self.db.fetch(_ALL_OPEN_GAPS, series.provider, series.symbol)
            found.extend(OpenGap(**dict(r)) for r in rows)
        return found


def _read_bar(start: datetime, row: asyncpg.Record, complete: bool) -> ReadBar:
    """A bar from a row with open, high, low, close, volume and trades."""
    return ReadBar(
        start,
        row["open"],
        row["high"],
        row["low"],
        row["close"],
        row["volume"],
        row["trades"],
        complete,
    )


def _ceil(interval: Interval, ts: datetime) -> datetime:
    """The first bucket edge at or after `ts`."""
    floor = interval.floor(ts)
    return floor if floor == ts else interval.next_start(floor)
