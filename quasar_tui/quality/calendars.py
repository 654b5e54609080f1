"""When a market trades: what decides whether a missing bar is a gap, whether a closed day is
worth fetching, and whether a quiet series is stale.

Three kinds: `24/7` (crypto), `24/5` (FX: Sunday 22:00 to Friday 22:00 UTC) and an exchange's
sessions from `exchange_calendars` (holidays and early closes included, offline), named by its
MIC (`XNYS`). Providers name exchanges their own way; `calendar_name_for` maps those names.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from quasar_tui.core.errors import InvalidInputError
from quasar_tui.core.intervals import Interval

ALWAYS = "24/7"
WEEKDAYS_FX = "24/5"
WEEKDAYS = "weekdays"  # Monday to Friday, whole UTC days: what a series with no weekend bars shows

# Providers' exchange codes (EODHD's, Polygon's MICs, common names) -> exchange_calendars names.
_EXCHANGES = {
    "US": "XNYS",
    "NYSE": "XNYS",
    "XNYS": "XNYS",
    "NYSE ARCA": "XNYS",
    "ARCX": "XNYS",
    "NYSE MKT": "XNYS",
    "AMEX": "XNYS",
    "XASE": "XNYS",
    "BATS": "XNYS",
    "NASDAQ": "XNAS",
    "XNAS": "XNAS",
    "LSE": "XLON",
    "XLON": "XLON",
    "XETRA": "XETR",
    "XETR": "XETR",
    "F": "XFRA",
    "PA": "XPAR",
    "AS": "XAMS",
    "BR": "XBRU",
    "MC": "XMAD",
    "MI": "XMIL",
    "SW": "XSWX",
    "TO": "XTSE",
    "V": "XTSX",
    "AU": "XASX",
    "HK": "XHKG",
    "TSE": "XTKS",
    "KO": "XKRX",
    "SHG": "XSHG",
    "NSE": "XBOM",
}
_CRYPTO_EXCHANGES = {"CC", "CRYPTO", "KRAKEN"}
_FX_EXCHANGES = {"FOREX", "FX"}
_CRYPTO_CLASSES = {"crypto", "cryptocurrency"}
_FX_CLASSES = {"fx", "forex", "currency"}


@dataclass(frozen=True)
class Session:
    """One trading span, in UTC; `day` is the session's date (the key of its daily bar)."""

    day: date
    open: datetime
    close: datetime


class Calendar(ABC):
    """Trading sessions of one market."""

    name: str

    @abstractmethod
    def sessions(self, start: datetime, end: datetime) -> list[Session]:
        """Sessions that overlap `[start, end)`, oldest first."""

    def is_open(self, ts: datetime) -> bool:
        return any(s.open <= ts < s.close for s in self.sessions(ts, ts + timedelta(seconds=1)))

    def first_expected(self, interval: Interval, start: datetime, end: datetime) -> datetime | None:
        """The first bar start in `[start, end)` the market trades in, or None: what lets a
        planner skip a closed span and an audit start a hole where trading resumes."""
        probe = start
        while probe < end:
            window = min(end, probe + timedelta(days=31))
            found = self.expected_starts(interval, probe, window, first_only=True)
            if found:
                return found[0]
            probe = window
        return None

    def expected_starts(
        self, interval: Interval, start: datetime, end: datetime, *, first_only: bool = False
    ) -> list[datetime]:
        """Starts of the bars a complete series holds in `[start, end)`.

        Intraday bars are those whose span overlaps a session; a daily bar is keyed at its
        session's date; a week or a month is expected when it holds any session."""
        if interval.is_intraday:
            found: list[datetime] = []
            for session in self.sessions(start, end):
                for ts in interval.starts(session.open, session.close):
                    if start <= ts < end and (not found or ts > found[-1]):
                        found.append(ts)
                        if first_only:
                            return found
            return found
        day_starts: list[datetime] = []
        days = self.sessions(interval.floor(start) - timedelta(days=1), end + timedelta(days=1))
        for session in days:
            key = interval.floor(datetime(*session.day.timetuple()[:3], tzinfo=UTC))
            if start <= key < end and (not day_starts or key > day_starts[-1]):
                day_starts.append(key)
                if first_only:
                    return day_starts
        return day_starts


class AlwaysOpen(Calendar):
    """Crypto: one session per UTC day, every day."""

    name = ALWAYS

    def sessions(self, start: datetime, end: datetime) -> list[Session]:
        return [
            Session(day.date(), day, day + timedelta(days=1))
            for day in Interval.D1.starts(start, end)
        ]


class FxWeek(Calendar):
    """FX: open from Sunday 22:00 to Friday 22:00 UTC; each UTC weekday is one session."""

    name = WEEKDAYS_FX

    def sessions(self, start: datetime, end: datetime) -> list[Session]:
        out = []
        for day in Interval.D1.starts(start, end):
            weekday = day.weekday()  # Monday 0 .. Sunday 6
            if weekday == 5:
                continue
            opens = day + timedelta(hours=22) if weekday == 6 else day
            closes = day + timedelta(hours=22) if weekday == 4 else day + timedelta(days=1)
            out.append(Session(day.date(), opens, closes))
        return out


class Weekdays(Calendar):
    """Monday to Friday, whole UTC days: the rule for a series whose market is not known but
    whose stored bars never fall on a weekend."""

    name = WEEKDAYS

    def sessions(self, start: datetime, end: datetime) -> list[Session]:
        return [
            Session(day.date(), day, day + timedelta(days=1))
            for day in Interval.D1.starts(start, end)
            if day.weekday() < 5
        ]


class Exchange(Calendar):
    """An exchange's sessions from exchange_calendars, holidays and early closes included."""

    def __init__(self, name: str, calendar: Any) -> None:
        self.name = name
        self._calendar = calendar

    def sessions(self, start: datetime, end: datetime) -> list[Session]:
        first = max(start, self._calendar.first_session.tz_localize(UTC).to_pydatetime())
        last = min(end, self._calendar.last_session.tz_localize(UTC).to_pydatetime())
        if first > last:
            return []
        days = self._calendar.sessions_in_range(first.date(), last.date())
        opens = self._calendar.opens[days]
        closes = self._calendar.closes[days]
        return [
            Session(day.date(), o.to_pydatetime(), c.to_pydatetime())
            for day, o, c in zip(days, opens, closes, strict=True)
            if o.to_pydatetime() < end and c.to_pydatetime() > start
        ]


@functools.cache
def calendar(name: str) -> Calendar:
    """`24/7`, `24/5`, `weekdays` or an exchange_calendars name (`XNYS`); InvalidInputError
    otherwise."""
    if name == ALWAYS:
        return AlwaysOpen()
    if name == WEEKDAYS_FX:
        return FxWeek()
    if name == WEEKDAYS:
        return Weekdays()
    import exchange_calendars  # 0.7 s to import: only when an exchange is asked for

    key = name.strip().upper()
    try:
        loaded = exchange_calendars.get_calendar(key, start="1990-01-01")
    except exchange_calendars.errors.InvalidCalendarName:
        raise InvalidInputError(
            f"unknown calendar {name!r}: use 24/7, 24/5 or an exchange code such as XNYS, "
            "XNAS, XLON"
        ) from None
    return Exchange(key, loaded)


def calendar_name_for(exchange: str | None, asset_class: str | None) -> str | None:
    """The calendar an asset trades on, from its provider's exchange and class; None when
    nothing says (callers then keep their own rule)."""
    code = (exchange or "").strip().upper()
    kind = (asset_class or "").strip().lower()
    if code in _CRYPTO_EXCHANGES or kind in _CRYPTO_CLASSES:
        return ALWAYS  # before FX: EODHD calls crypto pairs a "Currency"
    if code in _FX_EXCHANGES or kind in _FX_CLASSES:
        return WEEKDAYS_FX
    return _EXCHANGES.get(code)
