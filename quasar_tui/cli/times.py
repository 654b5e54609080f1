"""Time bounds as users type them on the command line: dates (a date as --to includes that
whole day) or ISO times, naive meaning UTC."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta

from quasar_tui.core.errors import UsageError
from quasar_tui.core.intervals import utc
from quasar_tui.store.bars import FAR_PAST

END_OF_TIME = datetime.max.replace(tzinfo=UTC)  # the open end: after any date one can type


def moment(text: str) -> date | datetime:
    """argparse type: a date, or an ISO time (naive means UTC)."""
    try:
        if len(text.strip()) == 10:
            return date.fromisoformat(text.strip())
        parsed = utc(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO time (YYYY-MM-DDTHH:MM)"
        ) from None
    return parsed


def bounds(start: date | datetime | None, end: date | datetime | None) -> tuple[datetime, datetime]:
    """[low, high) for `ts`; a date as --to includes that whole day."""
    low = FAR_PAST if start is None else as_time(start)
    if end is None or (not isinstance(end, datetime) and end == date.max):
        high = END_OF_TIME
    elif isinstance(end, datetime):
        high = end
    else:
        high = as_time(end) + timedelta(days=1)
    if high <= low:
        raise UsageError("--to must be later than --from")
    return low, high


def as_time(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)
