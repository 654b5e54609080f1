"""Deterministic market data for the fake REST servers, and the truth tests compare against.

Every bar is a pure function of (symbol, interval, start), so a bar is the same however the
range around it is asked for. Symbols ending in `.CC` or starting with `X:` are crypto and
trade around the clock; the others are equities: weekdays except `holidays`, and intraday
bars between 14:00 and 20:00 UTC. Weekly and monthly bars aggregate the daily ones.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk import Bar

SESSION = (time(14, 0), time(20, 0))


@dataclass
class Market:
    holidays: set[date] = field(default_factory=set)

    @staticmethod
    def around_the_clock(symbol: str) -> bool:
        return symbol.endswith(".CC") or symbol.startswith("X:")

    def trades_on(self, symbol: str, day: date) -> bool:
        if self.around_the_clock(symbol):
            return True
        return day.weekday() < 5 and day not in self.holidays

    def has_bar(self, symbol: str, interval: Interval, start: datetime) -> bool:
        if interval.is_intraday:
            if not self.trades_on(symbol, start.date()):
                return False
            return self.around_the_clock(symbol) or SESSION[0] <= start.time() < SESSION[1]
        return self.trades_on(symbol, start.date())

    def bars(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Bar]:
        """The bars starting in [start, end), keyed as Quasar keys them (UTC bar start)."""
        if interval in (Interval.W1, Interval.MO1):
            return [
                bar
                for period in interval.starts(start, end)
                if start <= period
                and (bar := self._aggregate(symbol, period, interval.next_start(period)))
            ]
        return [
            self.bar(symbol, interval, ts)
            for ts in interval.starts(start, end)
            if start <= ts and self.has_bar(symbol, interval, ts)
        ]

    def first_trading_day(self, symbol: str, start: datetime, end: datetime) -> date | None:
        day = start.date()
        while day < end.date():
            if self.trades_on(symbol, day):
                return day
            day += timedelta(days=1)
        return None

    def bar(self, symbol: str, interval: Interval, ts: datetime) -> Bar:
        digest = hashlib.sha256(f"{symbol}|{interval.value}|{ts.isoformat()}".encode()).digest()
        a, b, c, d = (x / 2**32 for x in struct.unpack("<4I", digest[:16]))
        base = 50 + (int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:2], "big") % 400)
        level = base * (1 + 0.2 * math.sin(ts.timestamp() / 3e6))
        open_ = round(level * (1 + (a - 0.5) * 0.02), 4)
        close = round(level * (1 + (b - 0.5) * 0.02), 4)
        high = round(max(open_, close) * (1 + c * 0.01), 4)
        low = round(min(open_, close) * (1 - d * 0.01), 4)
        volume = float(1000 + int(a * b * 1_000_000))
        return Bar(ts, open_, high, low, close, volume)

    def _aggregate(self, symbol: str, start: datetime, end: datetime) -> Bar | None:
        days = self.bars(symbol, Interval.D1, start, end)
        if not days:
            return None
        return Bar(
            start,
            days[0].open,
            max(b.high for b in days),
            min(b.low for b in days),
            days[-1].close,
            sum(b.volume for b in days),
        )


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
