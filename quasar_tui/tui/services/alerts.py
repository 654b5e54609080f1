"""Alerts as the console shows them, whichever engine fired them (here or in a daemon): new
entries of the alert history are read once a second, so attached consoles get them too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App

from quasar_tui.engine.states import DB_ERRORS
from quasar_tui.registry.alerts import AlertStore, HistoryEntry

_READ = 50  # at most this many new alerts are read (and toasted) per poll
_TOASTED = 3  # of those, the newest this many pop up
POLL_SECONDS = 1.0


class AlertInbox:
    """What fired since the console opened, and how many of those the user has not seen."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self.unread = 0
        self._last_id: int | None = None

    async def poll(self) -> list[HistoryEntry]:
        """The alerts recorded since the last poll, oldest first; the first poll only notes
        where the history ends (older alerts are in the Alerts mode, not news)."""
        entries = await self.store.history(limit=_READ)
        newest = entries[0].id if entries else 0
        if self._last_id is None:
            self._last_id = newest
            return []
        fresh = [e for e in reversed(entries) if e.id > self._last_id]
        self._last_id = max(self._last_id, newest)
        self.unread += len(fresh)
        return fresh

    def mark_read(self) -> None:
        self.unread = 0

    @property
    def label(self) -> str:
        """For the header: empty when nothing is unread."""
        if not self.unread:
            return ""
        return f"{self.unread} unread alert{'s' if self.unread != 1 else ''} (0)"


def toast_new_alerts(app: App[Any], inbox: AlertInbox, changed: Callable[[], None]) -> None:
    """Every second, new alerts pop up with the terminal bell (`changed` then updates the
    count shown); they are read at once while the Alerts mode shows."""

    async def check() -> None:
        try:
            fresh = await inbox.poll()
        except DB_ERRORS:
            return  # the engine feed reports a database that is away
        if app.current_mode == "alerts":
            inbox.mark_read()
        for entry in fresh[-_TOASTED:]:
            app.notify(entry.message, title="alert", severity="warning", timeout=10)
        if fresh:
            app.bell()
            changed()

    def check_soon() -> None:
        app.run_worker(check(), group="alerts", exclusive=True, exit_on_error=False)

    app.set_interval(POLL_SECONDS, check_soon)
