"""Type the common symbol for a provider symbol (or a common symbol's new name) and save it.

The caller passes what saving means (map, or rename) as `save`; its refusal (a taken name, a
conflicting mapping) is shown under the field and the form stays open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from quasar_tui.core.errors import QuasarError
from quasar_tui.registry.mappings import MappingStore, common_symbol
from quasar_tui.tui.modals.form import Field, FormModal

Save = Callable[[str], Awaitable[str]]
"""Gets the validated common symbol; returns the line to show when done."""


class EditCommonModal(FormModal[str]):
    SUBMIT_LABEL = "Save (Enter)"

    def __init__(self, title: str, subject: str, initial: str, save: Save) -> None:
        super().__init__()
        self.form_title = title
        self.subject = subject
        self.initial = initial
        self.save = save

    def compose_fields(self) -> Iterator[Widget]:
        yield Field(
            self.subject,
            Input(
                self.initial, id="common-input", placeholder="common symbol, e.g. BTC/USD or AAPL"
            ),
            "stored in upper case, with no spaces",
            id="common",
        )

    def on_mount(self) -> None:
        self.query_one("#common-input", Input).focus()

    async def submit(self) -> None:
        text = self.query_one("#common-input", Input).value
        try:
            value = common_symbol(text)
        except QuasarError as exc:
            self.fail("common", str(exc))
            return
        try:
            done = await self.save(value)
        except QuasarError as exc:
            self.fail("common", str(exc))
            return
        self.dismiss(done)


def open_map(
    screen: Screen[Any],
    mappings: MappingStore,
    provider: str,
    symbol: str,
    name: str | None,
    proposal: str,
    then: Callable[[], None],
) -> None:
    """The form mapping one provider symbol to the common symbol typed (it starts at
    `proposal`); once mapped it says so and calls `then`."""

    async def save(common: str) -> str:
        await mappings.map(common, provider, symbol)
        return f"mapped {provider}:{symbol} to {common}"

    def done(message: str | None) -> None:
        if message:
            screen.notify(message)
            then()

    screen.app.push_screen(
        EditCommonModal(f"Map {provider}:{symbol}", name or symbol, proposal, save), done
    )
