"""A burst of engine errors is one toast, and the next says how many more are in the Log: the
screen is never buried under toasts."""

from __future__ import annotations

from datetime import UTC, datetime

from quasar_tui.tui.services.log import NOTIFY_GAP, ErrorToasts, LogEntry


def test_a_burst_of_errors_is_one_toast_then_a_count_of_the_held_ones() -> None:
    shown: list[tuple[str, str]] = []
    now = [1000.0]
    toasts = ErrorToasts(
        lambda message, source: shown.append((message, source)), clock=lambda: now[0]
    )

    def error(message: str) -> None:
        toasts(LogEntry(datetime(2026, 12, 2, tzinfo=UTC), "error", "KRAKEN", message))

    error("connection refused")
    for _ in range(3):
        now[0] += NOTIFY_GAP / 4
        error("connection refused again")
    assert shown == [("connection refused", "KRAKEN")]

    now[0] += NOTIFY_GAP
    error("gave up")
    assert shown[-1] == ("gave up (+3 more in the Log)", "KRAKEN")
    now[0] += NOTIFY_GAP
    error("back")
    assert shown[-1] == ("back", "KRAKEN")
