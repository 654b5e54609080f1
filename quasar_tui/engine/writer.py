"""The one path by which bars and ticks reach the database.

Per table, a `BatchQueue` (engine/batching.py) cuts the rows producers put into batches and a
`_Committer` writes them, in a task of its own. The tables' rows, series keys and SQL are in
store/tables.py.

A bar batch whose every row lies beyond the last stored row of its series goes in by binary
COPY straight into the table. Tick batches go straight in without that check: their encoder
(store/tick_copy.py) finds where their series lie only as the COPY streams, and a live feed's
ticks are new but for a reconnect's re-sent few, which fail the COPY on the primary key. What
may overlap stored rows is copied into a temporary staging table and merged with `ON
CONFLICT`: bars are replaced (providers correct bars), ticks are kept. During a
database outage the batch is kept and retried forever with capped backoff; after any retry the
merge path is used, since the failed attempt may have committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from itertools import groupby
from typing import Any, Protocol

import asyncpg

from quasar_tui.core.messages import one_line
from quasar_tui.engine.backoff import Backoff
from quasar_tui.engine.batching import BatchQueue
from quasar_tui.engine.events import BarsWritten, EngineError, EventBus, WriterStats
from quasar_tui.store.announce import Written, announce_written
from quasar_tui.store.database import Database
from quasar_tui.store.tables import (
    BAR_TABLES,
    LIVE,
    LIVE_FROM_TICKS,
    TABLES,
    TICKS,
    BarRow,
    LiveBarRow,
    SeriesKey,
    Span,
    Spans,
    TableSpec,
    TickRow,
    primary_key,
)
from quasar_tui.store.tick_copy import TickCopy

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
RUN_PROBE = 64  # rows apart that share a series when a batch comes in runs (history chunks)


class CopyEncoder(Protocol):
    """A batch's binary COPY stream that also finds, as it is read, where its series lie."""

    @property
    def spans(self) -> Spans: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


#: Tables whose rows the writer encodes itself for binary COPY (store/tick_copy.py says why).
ENCODERS: dict[str, Callable[[Sequence[Any]], CopyEncoder]] = {TICKS.name: TickCopy}


class _Committer:
    """Commits batches of one table: fast COPY or staged merge, outage retries, refusals."""

    def __init__(self, spec: TableSpec, db: Database, bus: EventBus) -> None:
        self.spec = spec
        self.db = db
        self.bus = bus
        self.retrying = 0  # rows held while the database is unreachable
        self.on_retry: Callable[[], None] = lambda: None
        self._conn: asyncpg.Connection | None = None
        self._last: dict[SeriesKey, Any] = {}
        self._encoder = ENCODERS.get(spec.name)
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

    async def commit(self, rows: list[Any]) -> None:
        """Write a batch; rows the database refuses for good are isolated and reported."""
        error = await self._attempt(rows)
        if error is not None:
            self._reject(await self._isolate(rows), error)

    async def _isolate(self, rows: list[Any]) -> list[Any]:
        """Write a refused batch in halves so only the bad rows are lost; return those."""
        if len(rows) == 1:
            return rows
        middle = len(rows) // 2
        refused: list[Any] = []
        for half in (rows[:middle], rows[middle:]):
            if await self._attempt(half) is not None:
                refused.extend(await self._isolate(half))
        return refused

    async def _attempt(self, rows: list[Any]) -> Exception | None:
        """Commit `rows`, waiting out any outage; return the error if the rows are refused."""
        try:
            # Our own encoder finds the spans as the COPY streams (see ENCODERS): none known
            # before, so nothing can be seen to overlap stored rows and the COPY is tried.
            known = {} if self._encoder else self._summarise(rows)
        except TypeError as exc:  # e.g. naive and aware datetimes mixed in one series
            return exc
        backoff = Backoff(base=RETRY_BASE, cap=RETRY_CAP)
        while True:
            try:
                conn = await self._connection()
                if backoff.attempts:
                    spans = await self._merge(conn, rows, known)
                else:
                    spans = await self._write(conn, rows, known)
                break
            except OUTAGE_ERRORS as exc:
                await self.close()
                if not backoff.attempts:
                    message = f"database unreachable, holding {len(rows)} rows: {one_line(exc)}"
                    log.warning("%s writer: %s", self.spec.name, message)
                    self.bus.publish(EngineError(f"writer:{self.spec.name}", message))
                self.retrying = len(rows)
                self.counters["retries"] += 1
                self.on_retry()
                await asyncio.sleep(backoff.next())
            except Exception as exc:
                self.retrying = 0
                return exc
        if backoff.attempts:
            log.warning(
                "%s writer: database back, %d held rows written after %d retries",
                self.spec.name,
                len(rows),
                backoff.attempts,
            )
        self.retrying = 0
        self.counters["rows_written"] += len(rows)
        self._advance(spans)
        await self._announce(conn, spans)
        return None

    async def _announce(self, conn: asyncpg.Connection, spans: Spans) -> None:
        """Tell other processes (`quasar serve`) which bar series just changed."""
        spec = self.spec
        written = [
            Written(
                spec.name,
                series.provider,
                series.symbol,
                series.interval,
                span.count,
                spec.position_ts(span.high),
                spec.position_ts(span.low),
            )
            for key, span in spans.items()
            if (series := spec.named(key)).interval is not None
        ]
        try:
            await announce_written(conn, written)
        except (*OUTAGE_ERRORS, asyncpg.PostgresError) as exc:
            # The rows are in; a listener that missed this only serves a cached answer longer.
            log.info("%s writer: announcing written bars failed: %s", spec.name, one_line(exc))

    def _summarise(self, rows: list[Any]) -> Spans:
        """Per series: where its rows lie.

        History arrives in long runs of one series, summarised run by run in C loops; live
        bars of many symbols interleave, and are summarised row by row.
        """
        series, position = self.spec.series, self.spec.position
        if series(rows[0]) != series(rows[min(len(rows) - 1, RUN_PROBE)]):
            return _summarise_rows(rows, series, position)
        spans: Spans = {}
        for key, run in groupby(rows, series):
            positions = list(map(position, run))
            low, high = min(positions), max(positions)
            span = spans.get(key)
            if span is None:
                spans[key] = Span(low, high, len(positions))
            else:
                span.low, span.high = min(span.low, low), max(span.high, high)
                span.count += len(positions)
        return spans

    async def _write(self, conn: asyncpg.Connection, rows: list[Any], known: Spans) -> Spans:
        """COPY straight into the table when no known span reaches a stored row, else merge;
        return the rows' spans."""
        if await self._beyond_stored(conn, known):
            try:
                spans = await self._copy(conn, self.spec.name, rows, known)
            except asyncpg.UniqueViolationError:
                self.counters["fallbacks"] += 1
            else:
                self.counters["fast_batches"] += 1
                return spans
        return await self._merge(conn, rows, known)

    async def _merge(self, conn: asyncpg.Connection, rows: list[Any], known: Spans) -> Spans:
        unique = list({primary_key(row): row for row in rows}.values())
        async with conn.transaction():
            spans = await self._copy(conn, self.spec.stage, unique, known)
            await conn.execute(self.spec.merge, timeout=STATEMENT_TIMEOUT)
        self.counters["overlap_batches"] += 1
        return spans

    async def _copy(
        self, conn: asyncpg.Connection, table: str, rows: list[Any], known: Spans
    ) -> Spans:
        """COPY `rows` into `table`; return their spans (`known`, or what our encoder found)."""
        if self._encoder is not None:
            stream = self._encoder(rows)
            await conn.copy_to_table(
                table,
                source=stream,
                columns=self.spec.columns,
                format="binary",
                timeout=STATEMENT_TIMEOUT,
            )
            return stream.spans
        await conn.copy_records_to_table(
            table, records=rows, columns=self.spec.columns, timeout=STATEMENT_TIMEOUT
        )
        return known

    async def _beyond_stored(self, conn: asyncpg.Connection, spans: Spans) -> bool:
        unknown = [key for key in spans if key not in self._last]
        if unknown:
            columns = [list(values) for values in zip(*unknown, strict=True)]
            for record in await conn.fetch(self.spec.last_rows, *columns):
                key = tuple(record[i] for i in range(self.spec.key_width))
                self._last[key] = self.spec.position_of(record)
        last = self._last
        return all(last[key] is None or span.low > last[key] for key, span in spans.items())

    def _advance(self, spans: Spans) -> None:
        spec = self.spec
        for key, span in spans.items():
            if key in self._last and (self._last[key] is None or span.high > self._last[key]):
                self._last[key] = span.high
            series = spec.named(key)
            self.bus.publish(
                BarsWritten(
                    spec.name,
                    series.provider,
                    series.symbol,
                    series.interval,
                    span.count,
                    spec.position_ts(span.high),
                )
            )

    def _reject(self, rows: list[Any], exc: BaseException) -> None:
        """Rows the database refuses for good; retrying cannot help, so say so loudly."""
        if not rows:
            return
        self.counters["rejected_rows"] += len(rows)
        message = f"{len(rows)} rows refused and not written: {one_line(exc)}"
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

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except (*OUTAGE_ERRORS, asyncpg.PostgresError):
                conn.terminate()


def _summarise_rows(
    rows: list[Any], series: Callable[[Any], SeriesKey], position: Callable[[Any], Any]
) -> Spans:
    spans: Spans = {}
    get = spans.get
    for key, pos in zip(map(series, rows), map(position, rows), strict=True):
        span = get(key)
        if span is None:
            spans[key] = Span(pos, pos, 1)
        else:  # a series' rows mostly come in order: the high-water mark moves first
            if pos > span.high:
                span.high = pos
            elif pos < span.low:
                span.low = pos
            span.count += 1
    return spans


class _TableWriter:
    """One table: its queue, its committer and the task that moves batches from one to the
    other."""

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
        self.queue = BatchQueue(
            spec.name,
            capacity,
            flush_rows,
            min(flush_seconds, spec.linger),
            max_batch_rows,
        )
        self.committer = _Committer(spec, db, bus)
        self.committer.on_retry = lambda: bus.publish(self.snapshot())
        self._task: asyncio.Task[None] | None = None
        self._rate_mark = (time.monotonic(), 0)
        self.rows_per_second = 0.0

    def start(self) -> None:
        self.queue.open()
        self._task = asyncio.create_task(self._run(), name=f"writer:{self.spec.name}")

    def request_stop(self) -> asyncio.Task[None] | None:
        self.queue.close()
        return self._task

    async def _run(self) -> None:
        try:
            while (rows := await self.queue.next_batch()) is not None:
                await self.committer.commit(rows)
                await self.queue.committed(len(rows))
        finally:
            await self.committer.close()
            await self.queue.ended()

    def measure_rate(self) -> None:
        now, written = time.monotonic(), self.committer.counters["rows_written"]
        then, before = self._rate_mark
        if now > then:
            self.rows_per_second = (written - before) / (now - then)
        self._rate_mark = (now, written)

    def snapshot(self) -> WriterStats:
        return WriterStats(
            table=self.spec.name,
            queue_depth=self.queue.depth,
            queue_capacity=self.queue.capacity,
            lag_seconds=round(self.queue.lag_seconds(), 3),
            rows_per_second=round(self.rows_per_second, 1),
            pending_retry=self.committer.retrying,
        )

    def stats(self) -> dict[str, Any]:
        snapshot = self.snapshot()
        fields = {f: getattr(snapshot, f) for f in WriterStats.__struct_fields__}
        return {**fields, **self.committer.counters}


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
        self.db = db
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

    async def put_bars(self, table: str, rows: Sequence[BarRow] | Sequence[LiveBarRow]) -> None:
        """Queue `BarRow`s for `historical_data` or `LiveBarRow`s for `live_data`; waits while
        the queue is full."""
        if table not in BAR_TABLES:
            raise ValueError(f"bars go to historical_data or live_data, not {table!r}")
        await self._tables[table].queue.put(rows)

    async def put_ticks(self, rows: Sequence[TickRow]) -> None:
        """Queue `live_ticks` rows; waits while the queue is full."""
        await self._tables[TICKS.name].queue.put(rows)

    def offer_ticks(self, rows: Sequence[TickRow]) -> bool:
        """Queue one message's `live_ticks` rows at once if there is room; False when there
        is not (then `put_ticks` waits for it)."""
        return self._tables[TICKS.name].queue.offer(rows)

    async def rebuild_live_bars(
        self,
        provider: str,
        symbols: list[str],
        intervals: list[str],
        starts: list[datetime],
        ends: list[datetime],
    ) -> int:
        """Rebuild written live_data bars [start, end) from the stored ticks, once every row
        put so far is committed (a trade came after its bar was written); return how many
        bars changed."""
        await self.flush(TICKS.name, LIVE.name)
        status = await self.db.execute(LIVE_FROM_TICKS, provider, symbols, intervals, starts, ends)
        return int(status.split()[-1])

    async def flush(self, *tables: str) -> None:
        """Return once every row put before this call (into `tables`; default all) is
        committed."""
        chosen = [self._tables[t] for t in tables] if tables else self._tables.values()
        await asyncio.gather(*(w.queue.flush() for w in chosen))

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
