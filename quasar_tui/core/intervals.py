"""Bar intervals and the calendar maths around them.

Every bar is keyed by its *start* in UTC. Weeks start on Monday 00:00 UTC and months on the
1st, so a weekly or monthly bar from any provider lands on the same key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from quasar_tui.core.errors import InvalidInputError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)


class Interval(StrEnum):
    """The bar sizes Quasar stores; the value is the spelling used everywhere (CLI, DB)."""

    M1 = "1min"
    M5 = "5min"
    M15 = "15min"
    M30 = "30min"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"
    W1 = "1w"
    MO1 = "1M"

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Accept the canonical spelling and a few common aliases; raise InvalidInputError
        (a ValueError) otherwise."""
        key = text.strip()
        found = _ALIASES.get(key) or _ALIASES.get(key.lower())
        if found is None:
            choices = " ".join(i.value for i in cls)
            raise InvalidInputError(f"unknown interval {text!r}: use one of {choices}")
        return found

    @property
    def is_calendar(self) -> bool:
        """Monthly bars have no fixed length."""
        return self is Interval.MO1

    @property
    def is_intraday(self) -> bool:
        return self.seconds < 86_400

    @property
    def seconds(self) -> int:
        """Nominal length; a month counts as 30 days (use `next_start` for exact edges)."""
        return _SECONDS[self]

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def floor(self, ts: datetime) -> datetime:
        """Start of the bar that contains `ts`."""
        ts = ts.astimezone(UTC)
        if self is Interval.MO1:
            return ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if self is Interval.W1:
            weeks = (ts - _MONDAY_EPOCH) // timedelta(weeks=1)
            return _MONDAY_EPOCH + timedelta(weeks=weeks)
        step = self.seconds
        secs = int((ts - EPOCH).total_seconds())
        return EPOCH + timedelta(seconds=secs - secs % step)

    def next_start(self, start: datetime) -> datetime:
        """Start of the bar after the one that begins at (or contains) `start`."""
        start = self.floor(start)
        if self is Interval.MO1:
            year, month = divmod(start.month, 12)
            return start.replace(year=start.year + year, month=month + 1)
        return start + self.delta

    def starts(self, start: datetime, end: datetime) -> list[datetime]:
        """Bar starts from floor(start) up to and excluding `end`."""
        out: list[datetime] = []
        ts = self.floor(start)
        while ts < end:
            out.append(ts)
            ts = self.next_start(ts)
        return out


_SECONDS = {
    Interval.M1: 60,
    Interval.M5: 300,
    Interval.M15: 900,
    Interval.M30: 1800,
    Interval.H1: 3600,
    Interval.H4: 14_400,
    Interval.D1: 86_400,
    Interval.W1: 604_800,
    Interval.MO1: 2_592_000,
}

_ALIASES: dict[str, Interval] = {i.value: i for i in Interval}
_ALIASES.update(
    {
        "1m": Interval.M1,
        "5m": Interval.M5,
        "15m": Interval.M15,
        "30m": Interval.M30,
        "60min": Interval.H1,
        "4hour": Interval.H4,
        "1day": Interval.D1,
        "d": Interval.D1,
        "1week": Interval.W1,
        "w": Interval.W1,
        "1mo": Interval.MO1,
        "1month": Interval.MO1,
    }
)


def utc(ts: datetime) -> datetime:
    """Treat naive datetimes as UTC; convert aware ones to UTC."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)
