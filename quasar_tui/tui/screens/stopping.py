"""What a quit shows while the engine running in this console stops: the rows still to write,
counted down, then the database closing and its server stopping, until the console exits.
Without it the terminal went blank for seconds and a user could not tell a flush from a hang."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from quasar_tui.core.messages import one_line
from quasar_tui.tui.services import Services

REFRESH_SECONDS = 0.2


def stopping_words(rows: int) -> str:
    return f"Stopping the engine: flushing {rows:,} row{'' if rows == 1 else 's'}..."


class StoppingScreen(Screen[None]):
    """Stops the engine, shows its progress, then exits the app."""

    def __init__(self, services: Services, close: Callable[[], Awaitable[None]]) -> None:
        """`close` closes what the console holds (its words go to this screen's text)."""
        super().__init__()
        self.services = services
        self.close = close

    def compose(self) -> ComposeResult:
        yield Static(stopping_words(self.services.rows_to_write()), id="stopping")

    def on_mount(self) -> None:
        self._rows = self.set_interval(REFRESH_SECONDS, self._show_rows)
        self._stop()

    def _show_rows(self) -> None:
        self.query_one("#stopping", Static).update(stopping_words(self.services.rows_to_write()))

    @work(group="stop", exit_on_error=False)
    async def _stop(self) -> None:
        """Exit when done; a failure is the exit's message, printed once the screen is back."""
        try:
            await self.services.stop_engine()
            self._rows.stop()
            self.query_one("#stopping", Static).update("Closing the database...")
            await self.close()
        except Exception as exc:
            self.app.exit(None, 1, f"quasar: error while stopping: {one_line(exc)}")
        else:
            self.app.exit()
