"""One historical collection job for one subscription: plan, fetch, validate, write, account.

The job never raises for a provider failure: a chunk that fails is recorded as a gap (retried
by the next run) and the other chunks go on. Only when the writer has committed every row does
the job report 'ok'.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime, timedelta
from typing import Any, Protocol

from quasar_tui.core.clock import utc_now
from quasar_tui.core.intervals import Interval, utc
from quasar_tui.core.messages import one_line
from quasar_tui.engine.events import EventBus, JobRun, RunStatus
from quasar_tui.engine.gaps import Gap, SeriesGaps
from quasar_tui.engine.planner import Span, plan_ranges
from quasar_tui.engine.progress import Backfill, Backfills
from quasar_tui.engine.states import DB_ERRORS
from quasar_tui.engine.writer import Writer
from quasar_tui.quality.assigned import calendar_of
from quasar_tui.quality.calendars import ALWAYS, WEEKDAYS, Calendar, calendar
from quasar_tui.quality.flags import flag_series
from quasar_tui.sdk.abilities import HistorySource
from quasar_tui.sdk.models import Bar
from quasar_tui.store.database import Database
from quasar_tui.store.series import Series
from quasar_tui.store.tables import BarRow

log = logging.getLogger("quasar.engine.historical")

#: Longest a single chunk may take, retries and rate-limit waits included.
CHUNK_TIMEOUT = 900.0
#: Valid bars are handed to the writer in batches of this many while a chunk streams in.
PUT_ROWS = 5_000
#: The backfill's progress moves every this many valid bars, so a long chunk shows it moving
#: (PUT_ROWS is a multiple of it).
PROGRESS_ROWS = 100

_LAST_BAR = """
    SELECT max(ts) FROM historical_data WHERE provider = $1 AND symbol = $2 AND interval = $3"""
_START_RUN = """
    INSERT INTO collection_runs (subscription_id, provider, symbol, interval, started_at)
    VALUES ($1, $2, $3, $4, $5) RETURNING id"""
_FINISH_RUN = """
    UPDATE collection_runs SET finished_at = $2, rows_written = $3, status = $4, error = $5
     WHERE id = $1"""


class SubscriptionLike(Protocol):
    """What a run reads of its subscription (a SubscriptionRecord, or a test's stand-in)."""

    @property
    def id(self) -> int | None: ...
    @property
    def provider(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def interval(self) -> str: ...
    @property
    def lookback_days(self) -> int: ...


async def run_historical(
    db: Database,
    writer: Writer,
    bus: EventBus,
    provider: HistorySource,
    sub: SubscriptionLike,
    *,
    now: datetime | None = None,
    audit: bool | None = None,
    backfills: Backfills | None = None,
) -> JobRun:
    """Collect what is missing for `sub` up to the last closed bar before `now`.

    `audit` forces (True) or skips (False) the scan for interior holes; by default it runs
    when the series was not audited in the last `gaps.AUDIT_EVERY`. `backfills` hears how far
    the run is while it runs.
    """
    job = _Job(db, writer, provider, sub, now or utc_now(), backfills)
    started = utc_now()
    run_id = await db.fetchval(
        _START_RUN, sub.id, sub.provider, sub.symbol, job.interval.value, started
    )
    try:
        status, error = await job.collect(audit)
    except Exception as exc:  # the database or the writer failed under the job
        log.exception("%s: historical run failed", job.label)
        status, error = "failed", one_line(exc)
    finished = utc_now()
    result = JobRun(
        sub.provider, sub.symbol, job.interval.value, status, job.rows, started, finished, error
    )
    try:
        await db.execute(_FINISH_RUN, run_id, finished, job.rows, status, error)
    finally:
        bus.publish(result)
    log.info("%s: %s, %d rows%s", job.label, status, job.rows, f" ({error})" if error else "")
    return result


class _Job:
    def __init__(
        self,
        db: Database,
        writer: Writer,
        provider: HistorySource,
        sub: SubscriptionLike,
        now: datetime,
        backfills: Backfills | None = None,
    ) -> None:
        self.db = db
        self.backfills = backfills
        self.backfill: Backfill | None = None
        self.writer = writer
        self.provider = provider
        self.sub = sub
        self.interval = Interval.parse(str(sub.interval))
        self.now = utc(now)
        self.label = f"{sub.provider} {sub.symbol} {self.interval.value}"
        self.gaps = SeriesGaps(db, sub.provider, sub.symbol, self.interval)
        self.rows = 0
        self.invalid = 0
        self.first_invalid: str | None = None

    async def collect(self, audit: bool | None) -> tuple[RunStatus, str | None]:
        offered = getattr(self.provider, "INTERVALS", None)
        if offered is not None and self.interval not in offered:
            names = " ".join(i.value for i in offered)
            lacking = f"{self.sub.provider} does not offer {self.interval.value} bars"
            return "failed", f"{lacking} (it offers: {names})"
        key = (self.sub.provider, self.sub.symbol, self.interval.value)
        last = await self.db.fetchval(_LAST_BAR, *key)
        market = await self._calendar(last)
        lookback_start = self.now - timedelta(days=self.sub.lookback_days)
        gaps = await self.gaps.open()
        if last is not None and audit is not False:
            gaps += await self.gaps.audit(
                lookback_start, self.now, calendar=market, force=bool(audit)
            )
        max_range = (getattr(self.provider, "MAX_RANGE", None) or {}).get(self.interval)
        ranges = plan_ranges(
            self.interval,
            lookback_start,
            self.now,
            last,
            [(g.start, g.end) for g in gaps],
            max_range,
            calendar=market,
        )
        failures: list[tuple[Span, str]] = []
        if ranges and self.backfills is not None and self.sub.id is not None:
            self.backfill = self.backfills.begin(
                self.sub.id,
                self.sub.provider,
                self.sub.symbol,
                self.interval,
                ranges,
                self.provider,
            )
        try:
            for span in ranges:
                error = await self._fetch(span)
                if error is not None:
                    log.warning("%s: chunk %s..%s failed: %s", self.label, *span, error)
                    failures.append((span, error))
                if self.backfill is not None:
                    self.backfill.span_done(span)
        finally:
            if self.backfill is not None and self.backfills is not None:
                self.backfills.end(self.backfill)
        await self.writer.flush()
        await self._account(gaps, failures)
        if self.gaps.audited or self.rows:
            await self._flag(market, ranges)
        return self._verdict(len(ranges), failures)

    async def _flag(self, market: Calendar | None, ranges: list[Span]) -> None:
        """The quality pass after an audit or new bars, once this run's bars are committed:
        it reads the bars stored since the last pass and the spans fetched behind it (holes
        filled), apart from the writer. A failure only delays flags."""
        series = Series(self.sub.provider, self.sub.symbol)
        try:
            done = await flag_series(
                self.db,
                series,
                self.interval,
                market.name if market else ALWAYS,
                rewritten=ranges,
            )
        except DB_ERRORS as exc:
            log.warning("%s: quality pass failed: %s", self.label, one_line(exc))
            return
        if done.flagged:
            log.info("%s: %d of %d bars checked flagged", self.label, done.flagged, done.checked)

    async def _calendar(self, last: datetime | None) -> Calendar | None:
        """When the market trades, so closed days are neither fetched nor holes. Without a
        known calendar, a series whose stored bars skip weekends is taken to trade on weekdays;
        None (every day) otherwise."""
        sub = self.sub
        known = await calendar_of(self.db, sub.provider, sub.symbol, self.interval.value)
        if known is not None:
            return None if known.name == ALWAYS else known
        if (
            last is not None
            and self.interval.seconds <= Interval.D1.seconds
            and not await self.gaps.trades_on_weekends()
        ):
            return calendar(WEEKDAYS)
        return None

    async def _fetch(self, span: Span) -> str | None:
        """Stream one chunk into the writer; return the provider's error, if any."""
        start, end = span
        rows: list[BarRow] = []
        previous: datetime | None = None
        try:
            bars = aiter(self.provider.get_history(self.sub.symbol, start, end, self.interval))
        except Exception as exc:  # not even an iterator: the chunk failed
            return one_line(exc)
        deadline = asyncio.get_running_loop().time() + CHUNK_TIMEOUT
        error: str | None = None
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        bar = await anext(bars)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    error = f"no answer within {CHUNK_TIMEOUT:.0f}s"
                    break
                except Exception as exc:  # any provider failure: record the chunk as a gap
                    error = one_line(exc)
                    break
                row = self._row(bar, start, end, previous)
                if row is None:
                    continue
                previous = row.ts
                rows.append(row)
                if self.backfill is not None and len(rows) % PROGRESS_ROWS == 0:
                    self.backfill.fetched(span, PROGRESS_ROWS, row.ts)
                if len(rows) >= PUT_ROWS:
                    await self._put(rows, span)
                    rows = []
        finally:
            await _close(bars, self.label)
        await self._put(rows, span)
        return error

    def _row(
        self, bar: Bar, start: datetime, end: datetime, previous: datetime | None
    ) -> BarRow | None:
        """The row for a valid bar; None (counted, first reason kept) for an invalid one."""
        ts = utc(bar.ts)
        values = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        if self.interval.floor(ts) != ts:
            problem = f"not on a {self.interval.value} bar start"
        elif not start <= ts < end:
            problem = "outside the requested range"
        elif previous is not None and ts <= previous:
            problem = "repeated or out of order"
        elif not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            problem = "a price or volume is not a finite number"
        elif bar.high < bar.low:
            problem = "high below low"
        else:
            o, h, low, c, v = map(float, values)
            return BarRow(
                self.sub.provider, self.sub.symbol, self.interval.value, ts, o, h, low, c, v
            )
        self.invalid += 1
        if self.first_invalid is None:
            self.first_invalid = f"{problem} at {ts.isoformat()}"
        return None

    async def _put(self, rows: list[BarRow], span: Span) -> None:
        if rows:
            await self.writer.put_bars("historical_data", rows)
            self.rows += len(rows)
            if self.backfill is not None:  # the rows the loop has not counted yet
                self.backfill.fetched(span, len(rows) % PROGRESS_ROWS, rows[-1].ts)

    async def _account(self, gaps: list[Gap], failures: list[tuple[Span, str]]) -> None:
        """Resolve the gaps fetched cleanly; record failed chunks as gaps for the next run."""
        fetched = [g.id for g in gaps if not any(g.overlaps(*span) for span, _ in failures)]
        await self.gaps.resolve(fetched)
        for (start, end), error in failures:
            await self.gaps.record_failure(start, end, error)

    def _verdict(
        self, chunks: int, failures: list[tuple[Span, str]]
    ) -> tuple[RunStatus, str | None]:
        notes = []
        if failures:
            notes.append(f"{len(failures)} of {chunks} chunks failed, first: {failures[0][1]}")
        if self.invalid:
            notes.append(f"{self.invalid} invalid bars dropped, first: {self.first_invalid}")
        error = "; ".join(notes) or None
        if not failures:
            return "ok", error
        return ("failed" if len(failures) == chunks else "partial"), error


async def _close(bars: Any, label: str) -> None:
    """Close a provider's async generator (it may hold an HTTP response open)."""
    aclose = getattr(bars, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception as exc:
        log.debug("%s: provider iterator raised while closing: %s", label, one_line(exc))
