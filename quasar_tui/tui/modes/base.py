"""What a mode is: a screen with the shared header and footer, and its place in the mode list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from quasar_tui.tui.widgets.mode_bar import ModeBar

if TYPE_CHECKING:
    from quasar_tui.tui.app import QuasarApp
    from quasar_tui.tui.services import Services


class ModeScreen(Screen[None]):
    """A mode's screen: Header (mode, engine owner), `compose_body()`, Footer."""

    MODE_TITLE = "Quasar"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=self.quasar.options.clock, icon="◆")
        yield ModeBar()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        """Textual runs this for every mode screen as well as their own `on_mount`."""
        self.title = f"Quasar · {self.MODE_TITLE}"

    @property
    def quasar(self) -> QuasarApp:
        return cast("QuasarApp", self.app)

    @property
    def services(self) -> Services:
        return self.quasar.services


class FilterableScreen(ModeScreen):
    """A mode with a `/` filter box: an `Input` with id FILTER_ID and class "filter", hidden
    until used. Enter keeps the text and goes back to the list; Escape clears it."""

    FILTER_ID = "filter"
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="filter.open"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="filter.clear"),
    ]

    def filter_input(self, placeholder: str) -> Input:
        return Input(placeholder=placeholder, id=self.FILTER_ID, classes="filter")

    @property
    def filter_box(self) -> Input:
        return self.query_one(f"#{self.FILTER_ID}", Input)

    def action_filter(self) -> None:
        self.filter_box.add_class("-shown")
        self.filter_box.focus()

    def action_clear_filter(self) -> None:
        box = self.filter_box
        box.value = ""
        box.remove_class("-shown")
        self.focus_list()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == self.FILTER_ID:
            self.apply_filter(event.value.strip().lower())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == self.FILTER_ID:
            if not event.value:
                event.input.remove_class("-shown")
            self.focus_list()

    def apply_filter(self, text: str) -> None:
        """Show only rows containing `text` (lower case; empty shows all)."""

    def focus_list(self) -> None:
        """Put the focus back on the mode's main list."""


@dataclass(frozen=True)
class Mode:
    """`slot` is the number key that opens the mode (1..9), fixed so muscle memory holds."""

    name: str
    title: str
    slot: int
    screen: type[ModeScreen]
    help: str
