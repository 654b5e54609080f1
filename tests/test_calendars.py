"""Trading calendars decide what a gap is: holidays, early closes, FX weekends, crypto always."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from quasar_tui.core.errors import InvalidInputError
from quasar_tui.core.intervals import Interval
from quasar_tui.quality.calendars import ALWAYS, WEEKDAYS_FX, calendar, calendar_name_for


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_new_york_thanksgiving_week() -> None:
    nyse = calendar("XNYS")
    days = [s.day for s in nyse.sessions(utc(2026, 11, 23), utc(2026, 11, 30))]
    assert days == [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)]
    friday = nyse.sessions(utc(2026, 11, 27), utc(2026, 11, 28))[0]
    # Opens 09:30 and closes early at 13:00 New York time (EST, UTC-5).
    assert (friday.open, friday.close) == (utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18))
    assert not nyse.is_open(utc(2026, 11, 26, 16)) and nyse.is_open(utc(2026, 11, 27, 17, 59))
    assert not nyse.is_open(utc(2026, 11, 27, 18, 30))

    daily = nyse.expected_starts(Interval.D1, utc(2026, 11, 23), utc(2026, 11, 30))
    assert [d.day for d in daily] == [23, 24, 25, 27]
    hours = nyse.expected_starts(Interval.H1, utc(2026, 11, 27), utc(2026, 11, 28))
    assert hours == [utc(2026, 11, 27, h) for h in (14, 15, 16, 17)]
    weeks = nyse.expected_starts(Interval.W1, utc(2026, 11, 1), utc(2026, 12, 1))
    assert weeks == [utc(2026, 11, d) for d in (2, 9, 16, 23, 30)]


def test_fx_trades_from_sunday_evening_to_friday_evening() -> None:
    fx = calendar(WEEKDAYS_FX)
    assert not fx.is_open(utc(2026, 11, 29, 21, 59)) and fx.is_open(utc(2026, 11, 29, 22))
    assert fx.is_open(utc(2026, 12, 4, 21, 59)) and not fx.is_open(utc(2026, 12, 4, 22))
    assert not fx.is_open(utc(2026, 12, 5, 12))
    hours = fx.expected_starts(Interval.H1, utc(2026, 12, 4, 20), utc(2026, 12, 7, 1))
    assert hours == [
        utc(2026, 12, 4, 20),
        utc(2026, 12, 4, 21),
        utc(2026, 12, 6, 22),
        utc(2026, 12, 6, 23),
        utc(2026, 12, 7),
    ]


def test_crypto_never_closes() -> None:
    crypto = calendar(ALWAYS)
    start = utc(2026, 12, 5)  # a Saturday
    assert len(crypto.expected_starts(Interval.M15, start, start + timedelta(days=2))) == 192
    assert crypto.is_open(utc(2026, 12, 25, 12))


@pytest.mark.parametrize(
    ("exchange", "asset_class", "name"),
    [
        ("US", "Common Stock", "XNYS"),
        ("NASDAQ", "ETF", "XNAS"),
        ("XNAS", "CS", "XNAS"),
        ("ARCX", "ETF", "XNYS"),
        ("LSE", None, "XLON"),
        ("CC", "Currency", ALWAYS),
        ("KRAKEN", "crypto", ALWAYS),
        ("FOREX", "Currency", WEEKDAYS_FX),
        (None, "fx", WEEKDAYS_FX),
        ("SIMULATED", "equity", None),
    ],
)
def test_provider_exchange_codes_map_to_calendars(exchange, asset_class, name) -> None:
    assert calendar_name_for(exchange, asset_class) == name


def test_an_unknown_calendar_is_one_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="unknown calendar 'XNOPE': use 24/7, 24/5"):
        calendar("XNOPE")
