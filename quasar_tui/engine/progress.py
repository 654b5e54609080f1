"""How far each running backfill is: the share of its planned range stored, rows per second,
the time left at that pace and what the provider's rate limit still allows.

A job tells its `Backfill` the spans it planned, the valid bars it fetched (every few hundred,
with the newest one's start) and each span it finished; `Backfills.snapshot` is what the
engine publishes with its stats about once a second, so progress moves as chunks land.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk.abilities import RateBudgeted
from quasar_tui.sdk.models import RateBudget

Span = tuple[datetime, datetime]


class BackfillProgress(msgspec.Struct, frozen=True):
    """One running backfill as `quasar status --json`, the Dashboard and Subscriptions show it.

    `done` is the share (0 to 1) of the planned time range the run has reached; the ETA is the
    time left at the pace so far (None until something is stored)."""

    subscription_id: int
    provider: str
    symbol: str
    interval: str
    done: float
    rows: int
    rows_per_second: float | None
    eta_seconds: float | None
    budget: RateBudget | None = None

    def summary(self) -> str:
        """`42% 1,250 rows/s ETA 3m10s, rate 4/5 per 60s`: one line for a table cell."""
        parts = [f"{self.done:.0%}"]
        if self.rows_per_second is not None:
            parts.append(f"{self.rows_per_second:,.0f} rows/s")
        if self.eta_seconds is not None:
            parts.append(f"ETA {short_duration(self.eta_seconds)}")
        if self.budget is not None:
            b = self.budget
            parts.append(f"rate {b.left}/{b.calls} per {b.period:g}s")
        return " ".join(parts)


def short_duration(seconds: float) -> str:
    """3s, 4m05s, 2h10m, 3d04h."""
    whole = int(max(0.0, seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Backfill:
    """One run's progress through its planned spans."""

    def __init__(
        self,
        key: tuple[int, str, str, Interval],
        spans: list[Span],
        provider: object,
        clock: Callable[[], float],
    ) -> None:
        self.key = key
        self.spans = spans
        self.planned = sum((end - start for start, end in spans), timedelta())
        self.finished = timedelta()  # of the spans done
        self.reached = timedelta()  # into the span being fetched
        self.rows = 0
        self.provider = provider if isinstance(provider, RateBudgeted) else None
        self.clock = clock
        self.started = clock()

    def fetched(self, span: Span, rows: int, newest: datetime) -> None:
        """`rows` more valid bars of `span`, the newest starting at `newest`."""
        self.rows += rows
        start, end = span
        self.reached = min(end, self.key[3].next_start(newest)) - start

    def span_done(self, span: Span) -> None:
        self.finished += span[1] - span[0]
        self.reached = timedelta()

    def progress(self) -> BackfillProgress:
        sub_id, provider, symbol, interval = self.key
        done = min(1.0, (self.finished + self.reached) / self.planned) if self.planned else 1.0
        elapsed = self.clock() - self.started
        rate = self.rows / elapsed if elapsed > 0 and self.rows else None
        eta = elapsed * (1 - done) / done if done > 0 and elapsed > 0 else None
        budget = self.provider.rate_budget() if self.provider is not None else None
        return BackfillProgress(
            sub_id, provider, symbol, interval.value, round(done, 4), self.rows, rate, eta, budget
        )


class Backfills:
    """The backfills running now, by subscription id."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._running: dict[int, Backfill] = {}

    def begin(
        self,
        sub_id: int,
        provider_name: str,
        symbol: str,
        interval: Interval,
        spans: list[Span],
        provider: object,
    ) -> Backfill:
        backfill = Backfill((sub_id, provider_name, symbol, interval), spans, provider, self.clock)
        self._running[sub_id] = backfill
        return backfill

    def end(self, backfill: Backfill) -> None:
        if self._running.get(backfill.key[0]) is backfill:
            del self._running[backfill.key[0]]

    def snapshot(self) -> list[BackfillProgress]:
        return [b.progress() for _, b in sorted(self._running.items())]


def progress_from(stats: dict[str, object]) -> dict[int, BackfillProgress]:
    """The backfills in an engine's published stats, by subscription id; an entry this
    version cannot read (a daemon of another version) is left out."""
    found: dict[int, BackfillProgress] = {}
    entries = stats.get("backfills")
    for entry in entries if isinstance(entries, list) else []:
        try:
            item = msgspec.convert(entry, BackfillProgress)
        except (msgspec.ValidationError, TypeError):
            continue
        found[item.subscription_id] = item
    return found
