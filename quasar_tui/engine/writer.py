"""The one path by which bars and ticks reach the database.

One task per table drains a bounded queue (counted in rows; producers wait when it is full) and
commits a batch when it holds `flush_rows` rows or its oldest row is `flush_seconds` old. When
rows pile up behind a commit, the next batch takes up to `max_batch_rows` of them at once: each
commit waits for a WAL flush, so fewer, larger commits keep up with bulk loads.

A batch whose every row lies beyond the last stored row of its series goes in by binary COPY
straight into the table. Anything that may overlap stored rows is copied into a temporary
staging table and merged with `ON CONFLICT`: bars are replaced (providers correct bars), ticks
are kept. During a database outage the batch is kept and retried forever with capped backoff;
after any retry the merge path is used, since the failed attempt may have committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

import asyncpg

from quasar_tui.core.messages import describe_error
from quasar_tui.engine.backoff import Backoff
from quasar_tui.engine.events import (
    BarsWritten,
    EngineError,
    EventBus,
    WriterStats,
)
from quasar_tui.store.database import Database

log = logging.getLogger("quasar.engine.writer")

#: Errors that mean "the database is unreachable right now", not "these rows are wrong".
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.InterfaceError,
)

STATEMENT_TIMEOUT = 300.0
STATS_PERIOD = 1.0
RETRY_BASE = 0.05
RETRY_CAP = 5.0

# Every table's primary key is its first four columns.
_UNIQUE = itemgetter(0, 1, 2, 3)


@dataclass(frozen=True)
class TableSpec:
    """How one table is written: its columns, how rows map to a series, and its SQL."""

    name: str
    columns: tuple[str, ...]
    key_width: int
    series: Callable[[tuple], tuple]
    position: Callable[[tuple], Any]
    stage: str
    create_stage: str
    merge: str
    last_rows: str
    linger: bool = True  # a short batch waits up to flush_seconds for more rows

    def position_of(self, record: asyncpg.Record) -> Any:
        """The stored high-water mark in a `last_rows` record (None for a new series)."""
        first = record[self.key_width]
        if first is None:
            return None
        rest = tuple(record)[self.key_width :]
        return first if len(rest) == 1 else rest


_BAR_COLUMNS = ("provider", "symbol", "interval", "ts", "open", "high", "low", "close", "volume")

HISTORICAL = TableSpec(
    name="historical_data",
    columns=_BAR_COLUMNS,
    key_width=3,
    series=itemgetter(0, 1, 2),
    position=itemgetter(3),
    stage="quasar_stage_historical_data",
    create_stage="""
        CREATE TEMP TABLE IF NOT EXISTS quasar_stage_historical_data
            (LIKE historical_data INCLUDING DEFAULTS) ON COMMIT DELETE ROWS""",
    merge="""
        INSERT INTO historical_data AS t
               (provider, symbol, interval, ts, open, high, low, close, volume)
        SELECT provider, symbol, interval, ts, open, high, low, close, volume
          FROM quasar_stage_historical_data
        ON CONFLICT (provider, symbol, interval, ts) DO UPDATE
           SET open = excluded.open, high = excluded.high, low = excluded.low,
               close = excluded.close, volume = excluded.volume
         WHERE (t.open, t.high, t.low, t.close, t.volume) IS DISTINCT FROM
               (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)""",
    last_rows="""
        SELECT k.provider, k.symbol, k.interval, last.ts
          FROM unnest($1::text[], $2::text[], $3::text[]) AS k(provider, symbol, interval)
          LEFT JOIN LATERAL (
                SELECT h.ts FROM historical_data h
                 WHERE h.provider = k.provider AND h.symbol = k.symbol
                   AND h.interval = k.interval
                 ORDER BY h.ts DESC LIMIT 1) AS last ON true""",
)

LIVE = TableSpec(
    name="live_data",
    columns=(*_BAR_COLUMNS, "trades"),
    key_width=3,
    series=itemgetter(0, 1, 2),
    position=itemgetter(3),
    stage="quasar_stage_live_data",
    create_stage="""
        CREATE TEMP TABLE IF NOT EXISTS quasar_stage_live_data
            (LIKE live_data INCLUDING DEFAULTS) ON COMMIT DELETE ROWS""",
    merge="""
        INSERT INTO live_data AS t
               (provider, symbol, interval, ts, open, high, low, close, volume, trades)
        SELECT provider, symbol, interval, ts, open, high, low, close, volume, trades
          FROM quasar_stage_live_data
        ON CONFLICT (provider, symbol, interval, ts) DO UPDATE
           SET open = excluded.open, high = excluded.high, low = excluded.low,
               close = excluded.close, volume = excluded.volume, trades = excluded.trades
         WHERE (t.open, t.high, t.low, t.close, t.volume, t.trades) IS DISTINCT FROM
               (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume,
                excluded.trades)""",
    last_rows="""
        SELECT k.provider, k.symbol, k.interval, last.ts
          FROM unnest($1::text[], $2::text[], $3::text[]) AS k(provider, symbol, interval)
          LEFT JOIN LATERAL (
                SELECT l.ts FROM live_data l
                 WHERE l.provider = k.provider AND l.symbol = k.symbol
                   AND l.interval = k.interval
                 ORDER BY l.ts DESC LIMIT 1) AS last ON true""",
    linger=False,  # live bars come all at once as they close: waiting would only delay them
)

TICKS = TableSpec(
    name="live_ticks",
    columns=("provider", "symbol", "ts", "seq", "price", "size", "side"),
    key_width=2,
    series=itemgetter(0, 1),
    position=itemgetter(2, 3),
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
)

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (HISTORICAL, LIVE, TICKS)}
BAR_TABLES = frozenset({HISTORICAL.name, LIVE.name})


class WriterStopped(RuntimeError):
    """Rows were handed to a writer that is not running, or stopped before writing them."""


class _TableWriter:
    """Queue, batching, commit and retry for one table."""

    def __init__(
        self,
        spec: TableSpec,
        db: Database,
        bus: EventBus,
        capacity: int,
        flush_rows: int,
        flush_seconds: float,
        max_batch_rows: int,
    ) -> None:
        self.spec = spec
        self.db = db
        self.bus = bus
        self.capacity = capacity
        self.flush_rows = flush_rows
        self.max_batch_rows = max(flush_rows, max_batch_rows)
        self.flush_seconds = flush_seconds if spec.linger else 0.0
        self._pending: deque[tuple[float, list[tuple]]] = deque()
        self._pending_rows = 0
        self._depth = 0  # rows put and not yet committed, including the batch in flight
        self._put_total = 0
        self._taken_total = 0
        self._done_total = 0
        self._flush_until = 0
        self._inflight_since: float | None = None
        self._retrying = 0
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._last: dict[tuple, Any] = {}
        self._rate_mark = (time.monotonic(), 0)
        self.rows_per_second = 0.0
        self.counters = dict.fromkeys(
            (
                "rows_written",
                "fast_batches",
                "overlap_batches",
                "fallbacks",
                "retries",
                "rejected_rows",
            ),
            0,
        )

    # -- producer side ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    async def put(self, rows: list[tuple]) -> None:
        if not self.running:
            raise WriterStopped(f"the {self.spec.name} writer is not running")
        step = self.flush_rows
        for i in range(0, len(rows), step):
            part = rows[i : i + step]
            size = len(part)
            if self._depth and self._depth + size > self.capacity:
                async with self._changed:
                    await self._changed.wait_for(
                        lambda size=size: (
                            self._depth == 0
                            or self._depth + size <= self.capacity
                            or not self.running
                        )
                    )
                if not self.running:
                    raise WriterStopped(f"the {self.spec.name} writer stopped")
            self._pending.append((time.monotonic(), part))
            self._pending_rows += size
            self._depth += size
            self._put_total += size
            self._wake.set()

    async def flush(self) -> None:
        target = self._put_total
        if self._done_total >= target:
            return
        if self._task is None or self._task.done():
            raise WriterStopped(f"the {self.spec.name} writer is not running")
        self._flush_until = max(self._flush_until, target)
        self._wake.set()
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._done_total >= target or self._task is None or self._task.done()
            )
        if self._done_total < target:
            raise WriterStopped(f"the {self.spec.name} writer stopped before writing its rows")

    # -- the task --------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"writer:{self.spec.name}")

    def request_stop(self) -> asyncio.Task[None] | None:
        self._stopping = True
        self._wake.set()
        return self._task

    async def _run(self) -> None:
        try:
            while (rows := await self._next_batch()) is not None:
                await self._commit(rows)
                self._done_total += len(rows)
                self._depth -= len(rows)
                self._inflight_since = None
                async with self._changed:
                    self._changed.notify_all()
        finally:
            await self._close_connection()
            async with self._changed:
                self._changed.notify_all()

    async def _next_batch(self) -> list[tuple] | None:
        while True:
            self._wake.clear()
            timeout: float | None = None
            if self._pending:
                age = time.monotonic() - self._pending[0][0]
                if (
                    self._pending_rows >= self.flush_rows
                    or age >= self.flush_seconds
                    or self._flush_until > self._taken_total
                    or self._stopping
                ):
                    return self._take()
                timeout = self.flush_seconds - age
            elif self._stopping:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _take(self) -> list[tuple]:
        self._inflight_since = self._pending[0][0]
        rows = self._pending.popleft()[1]
        limit = self.max_batch_rows
        if self._pending and len(rows) + len(self._pending[0][1]) <= limit:
            rows = list(rows)
            while self._pending and len(rows) + len(self._pending[0][1]) <= limit:
                rows.extend(self._pending.popleft()[1])
        self._pending_rows -= len(rows)
        self._taken_total += len(rows)
        return rows

    async def _commit(self, rows: list[tuple]) -> None:
        """Write a batch; rows the database refuses for good are isolated and reported."""
        error = await self._attempt(rows)
        if error is not None:
            self._reject(await self._isolate(rows), error)

    async def _isolate(self, rows: list[tuple]) -> list[tuple]:
        """Write a refused batch in halves so only the bad rows are lost; return those."""
        if len(rows) == 1:
            return rows
        middle = len(rows) // 2
        refused: list[tuple] = []
        for half in (rows[:middle], rows[middle:]):
            if await self._attempt(half) is not None:
                refused.extend(await self._isolate(half))
        return refused

    async def _attempt(self, rows: list[tuple]) -> Exception | None:
        """Commit `rows`, waiting out any outage; return the error if the rows are refused."""
        try:
            spans = self._summarise(rows)
        except TypeError as exc:  # e.g. naive and aware datetimes mixed in one series
            return exc
        backoff = Backoff(base=RETRY_BASE, cap=RETRY_CAP)
        while True:
            try:
                conn = await self._connection()
                if backoff.attempts:
                    await self._merge(conn, rows)
                else:
                    await self._write(conn, rows, spans)
                break
            except OUTAGE_ERRORS as exc:
                await self._close_connection()
                if not backoff.attempts:
                    message = (
                        f"database unreachable, holding {len(rows)} rows: {describe_error(exc)}"
                    )
                    log.warning("%s writer: %s", self.spec.name, message)
                    self.bus.publish(EngineError(f"writer:{self.spec.name}", message))
                self._retrying = len(rows)
                self.counters["retries"] += 1
                self.bus.publish(self.snapshot())
                await asyncio.sleep(backoff.next())
            except Exception as exc:
                self._retrying = 0
                return exc
        if backoff.attempts:
            log.warning(
                "%s writer: database back, %d held rows written after %d retries",
                self.spec.name,
                len(rows),
                backoff.attempts,
            )
        self._retrying = 0
        self.counters["rows_written"] += len(rows)
        self._advance(spans)
        return None

    def _summarise(self, rows: list[tuple]) -> dict[tuple, list[Any]]:
        """Per series: [lowest position, highest position, row count].

        History arrives in long runs of one series, summarised run by run in C loops; ticks
        of many symbols interleave, and are summarised row by row.
        """
        series, position = self.spec.series, self.spec.position
        if series(rows[0]) != series(rows[min(len(rows) - 1, RUN_PROBE)]):
            return _summarise_rows(rows, series, position)
        spans: dict[tuple, list[Any]] = {}
        for key, run in groupby(rows, series):
            positions = list(map(position, run))
            low, high = min(positions), max(positions)
            span = spans.get(key)
            if span is None:
                spans[key] = [low, high, len(positions)]
            else:
                span[0], span[1] = min(span[0], low), max(span[1], high)
                span[2] += len(positions)
        return spans

    async def _write(
        self, conn: asyncpg.Connection, rows: list[tuple], spans: dict[tuple, list[Any]]
    ) -> None:
        if await self._beyond_stored(conn, spans):
            try:
                await conn.copy_records_to_table(
                    self.spec.name,
                    records=rows,
                    columns=self.spec.columns,
                    timeout=STATEMENT_TIMEOUT,
                )
            except asyncpg.UniqueViolationError:
                self.counters["fallbacks"] += 1
            else:
                self.counters["fast_batches"] += 1
                return
        await self._merge(conn, rows)

    async def _merge(self, conn: asyncpg.Connection, rows: list[tuple]) -> None:
        unique = list({_UNIQUE(row): row for row in rows}.values())
        async with conn.transaction():
            await conn.copy_records_to_table(
                self.spec.stage,
                records=unique,
                columns=self.spec.columns,
                timeout=STATEMENT_TIMEOUT,
            )
            await conn.execute(self.spec.merge, timeout=STATEMENT_TIMEOUT)
        self.counters["overlap_batches"] += 1

    async def _beyond_stored(self, conn: asyncpg.Connection, spans: dict[tuple, list[Any]]) -> bool:
        unknown = [key for key in spans if key not in self._last]
        if unknown:
            columns = [list(values) for values in zip(*unknown, strict=True)]
            for record in await conn.fetch(self.spec.last_rows, *columns):
                key = tuple(record[i] for i in range(self.spec.key_width))
                self._last[key] = self.spec.position_of(record)
        last = self._last
        return all(last[key] is None or span[0] > last[key] for key, span in spans.items())

    def _advance(self, spans: dict[tuple, list[Any]]) -> None:
        bars = self.spec.name in BAR_TABLES
        for key, (_, high, count) in spans.items():
            if key in self._last and (self._last[key] is None or high > self._last[key]):
                self._last[key] = high
            self.bus.publish(
                BarsWritten(
                    self.spec.name,
                    key[0],
                    key[1],
                    key[2] if bars else None,
                    count,
                    high if bars else high[0],
                )
            )

    def _reject(self, rows: list[tuple], exc: BaseException) -> None:
        """Rows the database refuses for good; retrying cannot help, so say so loudly."""
        if not rows:
            return
        self.counters["rejected_rows"] += len(rows)
        message = f"{len(rows)} rows refused and not written: {describe_error(exc)}"
        log.error("%s writer: %s (first row %r)", self.spec.name, message, rows[0][:4])
        self.bus.publish(EngineError(f"writer:{self.spec.name}", message))

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = None
            conn = await self.db.connect()
            try:
                await conn.execute(self.spec.create_stage)
            except BaseException:
                conn.terminate()
                raise
            self._conn = conn
        return self._conn

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except (*OUTAGE_ERRORS, asyncpg.PostgresError):
                conn.terminate()

    # -- reporting -------------------------------------------------------------------------

    def lag_seconds(self) -> float:
        oldest = self._inflight_since
        if oldest is None and self._pending:
            oldest = self._pending[0][0]
        return 0.0 if oldest is None else max(0.0, time.monotonic() - oldest)

    def measure_rate(self) -> None:
        now, written = time.monotonic(), self.counters["rows_written"]
        then, before = self._rate_mark
        if now > then:
            self.rows_per_second = (written - before) / (now - then)
        self._rate_mark = (now, written)

    def snapshot(self) -> WriterStats:
        return WriterStats(
            table=self.spec.name,
            queue_depth=self._depth,
            queue_capacity=self.capacity,
            lag_seconds=round(self.lag_seconds(), 3),
            rows_per_second=round(self.rows_per_second, 1),
            pending_retry=self._retrying,
        )

    def stats(self) -> dict[str, Any]:
        snapshot = self.snapshot()
        return {**{f: getattr(snapshot, f) for f in WriterStats.__struct_fields__}, **self.counters}


RUN_PROBE = 64  # rows apart that share a series when a batch comes in runs (history chunks)


def _summarise_rows(
    rows: list[tuple], series: Callable[[tuple], tuple], position: Callable[[tuple], Any]
) -> dict[tuple, list[Any]]:
    spans: dict[tuple, list[Any]] = {}
    get = spans.get
    for key, pos in zip(map(series, rows), map(position, rows), strict=True):
        span = get(key)
        if span is None:
            spans[key] = [pos, pos, 1]
        else:
            if pos < span[0]:
                span[0] = pos
            elif pos > span[1]:
                span[1] = pos
            span[2] += 1
    return spans


class Writer:
    """Per-table writer tasks behind one object; see the module docstring for the paths.

    Use it from the event loop that started it. `stats()` gives, per table, the queue depth,
    lag, rate and rows held for retry, plus counters (rows written, batches by path, fallbacks
    from COPY to merge, retries, rows refused).
    """

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        queue_rows: int = 200_000,
        flush_rows: int = 5_000,
        flush_seconds: float = 0.25,
        max_batch_rows: int = 100_000,
    ) -> None:
        if queue_rows < 1 or flush_rows < 1 or flush_seconds <= 0:
            raise ValueError("queue_rows and flush_rows must be >= 1 and flush_seconds > 0")
        self.bus = bus
        self._tables = {
            name: _TableWriter(spec, db, bus, queue_rows, flush_rows, flush_seconds, max_batch_rows)
            for name, spec in TABLES.items()
        }
        self._reporter: asyncio.Task[None] | None = None
        self._published: dict[str, WriterStats] = {}

    @property
    def running(self) -> bool:
        return self._reporter is not None

    async def start(self) -> None:
        if self._reporter is not None:
            return
        for table in self._tables.values():
            table.start()
        self._reporter = asyncio.create_task(self._report(), name="writer:stats")

    async def stop(self, grace: float | None = None) -> None:
        """Write everything queued, then stop; after `grace` seconds give up loudly."""
        if self._reporter is None:
            return
        tasks = [t for t in (w.request_stop() for w in self._tables.values()) if t is not None]
        _, unfinished = await asyncio.wait(tasks, timeout=grace)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished)
            lost = sum(w.snapshot().queue_depth for w in self._tables.values())
            message = f"stopped after {grace}s with {lost} rows not written"
            log.error("writer: %s", message)
            self.bus.publish(EngineError("writer", message))
        self._reporter.cancel()
        await asyncio.gather(self._reporter, return_exceptions=True)
        self._reporter = None
        self._publish_stats()

    async def put_bars(self, table: str, rows: list[tuple]) -> None:
        """Queue bar rows for `historical_data` or `live_data`; waits while the queue is full.

        Rows are (provider, symbol, interval, ts, open, high, low, close, volume), plus `trades`
        for live_data, with `ts` the bar start as an aware datetime.
        """
        if table not in BAR_TABLES:
            raise ValueError(f"bars go to historical_data or live_data, not {table!r}")
        await self._tables[table].put(rows)

    async def put_ticks(self, rows: list[tuple]) -> None:
        """Queue `live_ticks` rows (provider, symbol, ts, seq, price, size, side)."""
        await self._tables[TICKS.name].put(rows)

    async def flush(self, *tables: str) -> None:
        """Return once every row put before this call (into `tables`; default all) is
        committed."""
        chosen = [self._tables[t] for t in tables] if tables else self._tables.values()
        await asyncio.gather(*(w.flush() for w in chosen))

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: w.stats() for name, w in self._tables.items()}

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(STATS_PERIOD)
            self._publish_stats()

    def _publish_stats(self) -> None:
        for name, table in self._tables.items():
            table.measure_rate()
            snapshot = table.snapshot()
            if self._published.get(name) != snapshot:
                self._published[name] = snapshot
                self.bus.publish(snapshot)
