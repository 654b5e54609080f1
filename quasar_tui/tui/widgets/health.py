"""Engine health for the dashboard: a summary panel, and a series' freshness as the console
shows it, by the engine's rule (engine/status.py: a closed market is never stale)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from quasar_tui.core.intervals import Interval
from quasar_tui.core.text import printable
from quasar_tui.engine.status import freshness as engine_freshness
from quasar_tui.quality.assigned import SeriesKey, subscribed_calendar_names
from quasar_tui.quality.calendars import Calendar, calendar
from quasar_tui.store.database import Database
from quasar_tui.tui.livebook import LiveBook
from quasar_tui.tui.services.view import EngineView


@dataclass(frozen=True)
class Freshness:
    """`level` is ok, late, stale or idle; the dashboard colours by it and sorts stale first."""

    label: str
    level: str


def humanize(delta: timedelta) -> str:
    seconds = max(0.0, delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def freshness(
    interval: str,
    enabled: bool,
    last_bar: datetime | None,
    now: datetime,
    calendar: Calendar | None = None,
) -> Freshness:
    """The engine's verdict (`quasar status` says the same), worded for a table cell."""
    age, verdict = engine_freshness(Interval.parse(interval), last_bar, enabled, now, calendar)
    if verdict == "paused":
        return Freshness("paused", "idle")
    if verdict == "no data" or age is None:
        return Freshness("no bars yet", "late")
    if verdict == "fresh":
        return Freshness("fresh", "ok")
    return Freshness(f"{humanize(timedelta(seconds=age))} behind", "stale")


async def series_calendars(db: Database) -> dict[SeriesKey, Calendar]:
    """Each subscribed series' calendar, the exchanges' loaded off the console's loop."""
    names = await subscribed_calendar_names(db)
    return await asyncio.to_thread(lambda: {key: calendar(n) for key, n in names.items()})


LEVEL_STYLES = {"ok": "green", "late": "yellow", "stale": "bold red", "idle": "dim"}


class EnginePanel(Static):
    """Who runs the engine, whether it is alive, and the live and write totals."""

    HELP_GROUP = "Engine"

    def show(self, view: EngineView, book: LiveBook, now: datetime) -> None:
        live, rate = book.activity(monotonic())
        states = [p.state for p in view.providers.values()]
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("Owner", Text(view.label, style="green" if view.running else "red"))
        if view.owner is not None:
            grid.add_row(
                "Started",
                f"{view.owner.started_at:%Y-%m-%d %H:%M:%S} UTC "
                f"(up {humanize(now - view.owner.started_at)})",
            )
            if view.attached:
                grid.add_row("Heartbeat", f"{humanize(now - view.owner.heartbeat)} ago")
        grid.add_row("Live", f"{live} of {len(book)} symbols ticking, {rate:,.1f} ticks/s")
        grid.add_row("Written", f"{view.rows_written:,} rows")
        late = view.late
        if late.corrected or late.dropped:
            grid.add_row(
                "Late trades",
                Text(
                    f"{late.corrected:,} after their bar ({late.bars:,} bars rebuilt), "
                    f"{late.dropped:,} lost",
                    style="yellow" if late.dropped else "",
                ),
            )
        if late.history_filled:
            grid.add_row(
                "Catch-up",
                Text(
                    f"{late.history_filled:,} trades before the session, filled from history",
                    style="dim",
                ),
            )
        grid.add_row(
            "Providers",
            f"{states.count('connected')} connected, "
            f"{sum(s in ('error', 'disconnected') for s in states)} down",
        )
        for line in view.timescale_jobs:
            style = "bold red" if line.endswith("OVERDUE") else ""
            grid.add_row("TimescaleDB", Text(printable(line), style=style))
        self.update(grid)
