"""Freshness by calendar: a closed market is not stale; a missing session bar is."""

from __future__ import annotations

from datetime import UTC, datetime

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.status import freshness
from quasar_tui.quality.calendars import ALWAYS, calendar


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_closed_market_is_not_stale() -> None:
    nyse = calendar("XNYS")
    wednesday = utc(2026, 11, 25)
    # Thanksgiving, then Friday's early-close session still open: nothing is missing.
    assert freshness(Interval.D1, wednesday, True, utc(2026, 11, 27, 17), nyse)[1] == "fresh"
    # Friday's bar is due 12 h after the day ends.
    assert freshness(Interval.D1, wednesday, True, utc(2026, 11, 28, 11), nyse)[1] == "fresh"
    assert freshness(Interval.D1, wednesday, True, utc(2026, 11, 28, 12), nyse)[1] == "stale"
    friday = utc(2026, 11, 27)
    assert freshness(Interval.D1, friday, True, utc(2026, 11, 30, 11), nyse)[1] == "fresh"
    # Intraday: the hours of a weekend are not missing bars.
    last_hour = utc(2026, 11, 27, 17)
    assert freshness(Interval.H1, last_hour, True, utc(2026, 11, 29, 20), nyse)[1] == "fresh"
    assert freshness(Interval.H1, last_hour, True, utc(2026, 11, 30, 17, 30), nyse)[1] == "stale"


def test_crypto_is_stale_on_any_day_and_no_calendar_keeps_the_slack() -> None:
    always = calendar(ALWAYS)
    saturday = utc(2026, 11, 28, 12)
    assert freshness(Interval.M1, saturday, True, utc(2026, 11, 28, 12, 2), always)[1] == "fresh"
    assert freshness(Interval.M1, saturday, True, utc(2026, 11, 28, 12, 5), always)[1] == "stale"
    age, label = freshness(Interval.D1, utc(2026, 11, 25), True, utc(2026, 11, 28, 12))
    assert label == "fresh" and age == 2.5 * 86_400
