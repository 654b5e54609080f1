"""Which calendar a stored series follows: the subscription's own choice
(`quasar subscribe ... --calendar`), else what its asset's exchange and class say."""

from __future__ import annotations

from quasar_tui.quality.calendars import Calendar, calendar, calendar_name_for
from quasar_tui.store.database import Database

_ASSET_AND_CHOICE = """
    SELECT a.exchange, a.asset_class,
           (SELECT s.calendar FROM subscriptions s
             WHERE s.provider = a.provider AND s.symbol = a.symbol AND s.interval = $3
               AND s.calendar IS NOT NULL
             LIMIT 1) AS chosen
      FROM assets a
     WHERE a.provider = $1 AND a.symbol = $2
"""


# Every subscribed series with the calendar it follows, in one round trip.
_ALL_SUBSCRIBED = """
    SELECT s.provider, s.symbol, s.interval, s.calendar AS chosen, a.exchange, a.asset_class
      FROM subscriptions s
      LEFT JOIN assets a ON a.provider = s.provider AND a.symbol = s.symbol
"""

SeriesKey = tuple[str, str, str]  # provider, symbol, interval


async def subscribed_calendar_names(db: Database) -> dict[SeriesKey, str]:
    """The calendar name of each subscribed series whose calendar is known (no calendar is
    loaded: an exchange's takes a moment the first time, which a console does off its loop)."""
    found: dict[SeriesKey, str] = {}
    for r in await db.fetch(_ALL_SUBSCRIBED):
        name = r["chosen"] or calendar_name_for(r["exchange"], r["asset_class"])
        if name:
            found[(r["provider"], r["symbol"], r["interval"])] = name
    return found


async def subscribed_calendars(db: Database) -> dict[SeriesKey, Calendar]:
    """The calendar of each subscribed series whose calendar is known."""
    return {key: calendar(name) for key, name in (await subscribed_calendar_names(db)).items()}


async def calendar_of(db: Database, provider: str, symbol: str, interval: str) -> Calendar | None:
    """The series' calendar, or None when neither the user nor the asset says."""
    row = await db.fetchrow(_ASSET_AND_CHOICE, provider, symbol, interval)
    if row is None:
        return None
    name = row["chosen"] or calendar_name_for(row["exchange"], row["asset_class"])
    return calendar(name) if name else None
