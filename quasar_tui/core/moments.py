"""Time bounds as users write them, shared by the Python API and the HTTP API."""

from __future__ import annotations

from datetime import UTC, date, datetime

from quasar_tui.core.errors import InvalidInputError

Moment = str | date | datetime | None


def moment(value: Moment) -> datetime | None:
    """A time bound as users write it: a datetime (naive means UTC), a date, or ISO text."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"{value!r} is not a date (YYYY-MM-DD) or an ISO time (YYYY-MM-DDTHH:MM)"
        ) from None
    return moment(parsed)
