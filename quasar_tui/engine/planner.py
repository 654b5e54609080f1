"""Which bar ranges a historical job should request. Pure: no I/O, no clock.

Ranges are half-open `[start, end)` spans of bar *starts*, at the interval's own granularity.
Only closed bars are requested: every range ends at or before the start of the bar that
contains `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from quasar_tui.core.intervals import Interval
from quasar_tui.quality.calendars import Calendar

Span = tuple[datetime, datetime]

#: Two spans closer than this many bars are fetched as one request: a request costs about as
#: much as re-reading this many bars that are already stored.
MERGE_BARS = 500


def plan_ranges(
    interval: Interval,
    lookback_start: datetime,
    now: datetime,
    last_stored: datetime | None,
    gaps: Iterable[Span] = (),
    max_range: timedelta | None = None,
    *,
    calendar: Calendar | None = None,
) -> list[Span]:
    """The ranges to fetch, oldest first, each at most `max_range` long.

    A series with nothing stored starts at `lookback_start`; otherwise it resumes after
    `last_stored`. `gaps` (failed chunks, audit holes) are added, nearby spans are merged, and
    with a `calendar` spans in which the market never trades (weekends, holidays) are dropped.
    """
    horizon = interval.floor(now)
    head = (
        interval.floor(lookback_start) if last_stored is None else interval.next_start(last_stored)
    )
    spans = [(head, horizon)] if head < horizon else []
    for start, end in gaps:
        span = (interval.floor(start), min(ceil(interval, end), horizon))
        if span[0] < span[1]:
            spans.append(span)
    ranges = [
        chunk
        for span in merge(interval, spans, max_range)
        for chunk in chunks(interval, span, max_range)
    ]
    if calendar is not None:
        ranges = [r for r in ranges if calendar.first_expected(interval, *r) is not None]
    return ranges


def ceil(interval: Interval, ts: datetime) -> datetime:
    """The first bar start at or after `ts`."""
    start = interval.floor(ts)
    return start if start == ts else interval.next_start(start)


def merge(interval: Interval, spans: Sequence[Span], max_range: timedelta | None) -> list[Span]:
    """Union overlapping spans; join near ones while the result still fits one request."""
    slack = interval.delta * MERGE_BARS
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged:
            first, last = merged[-1]
            fits = max_range is None or max(end, last) - first <= max_range
            if start <= last or (start - last <= slack and fits):
                merged[-1] = (first, max(end, last))
                continue
        merged.append((start, end))
    return merged


def chunks(interval: Interval, span: Span, max_range: timedelta | None) -> list[Span]:
    """Split a span into pieces of at most `max_range`, cut on bar starts."""
    start, end = span
    if max_range is None:
        return [span]
    out: list[Span] = []
    while start < end:
        stop = min(end, interval.floor(start + max_range))
        if stop <= start:
            stop = min(end, interval.next_start(start))
        out.append((start, stop))
        start = stop
    return out


def find_holes(
    interval: Interval,
    steps: Iterable[Span],
    *,
    lookback_start: datetime | None = None,
    first_stored: datetime | None = None,
    calendar: Calendar | None = None,
) -> list[Span]:
    """Missing bar spans, from consecutive stored bar starts `(ts, next_ts)`.

    Also the span between the lookback start and the first stored bar, so a longer lookback is
    backfilled. With a `calendar`, a hole starts where the market trades again: a weekend, a
    holiday or a night alone is no hole.
    """
    holes = [(interval.next_start(ts), nxt) for ts, nxt in steps]
    if lookback_start is not None and first_stored is not None:
        holes.insert(0, (interval.floor(lookback_start), first_stored))
    if calendar is not None:
        trading = [(calendar.first_expected(interval, start, end), end) for start, end in holes]
        return [(start, end) for start, end in trading if start is not None and start < end]
    return [(start, end) for start, end in holes if start < end]
