"""What a quit shows while the engine running in this console stops: the rows still to write,
counted down, until the engine has stopped and the console exits. Without it the terminal went
blank for seconds and a user could not tell a flush from a hang."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from quasar_tui.tui.services import Services

REFRESH_SECONDS = 0.2


def stopping_words(rows: int) -> str:
    return f"Stopping the engine: flushing {rows:,} row{'' if rows == 1 else 's'}..."


class StoppingScreen(Screen[None]):
    """Stops the engine, shows its progress, then exits the app."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    def compose(self) -> ComposeResult:
        yield Static(stopping_words(self.services.rows_to_write()), id="stopping")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._show_rows)
        self._stop()

    def _show_rows(self) -> None:
        self.query_one("#stopping", Static).update(stopping_words(self.services.rows_to_write()))

    @work(group="stop", exit_on_error=False)
    async def _stop(self) -> None:
        try:
            await self.services.stop_engine()
        finally:
            self.app.exit()
