"""Wall-clock time, always aware and in UTC; code that must run market time fast in tests takes
a `Clock` instead of calling this."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)
