"""What a mode is: a screen with the shared header, mode bar, status line and footer, and its
place in the mode list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.events import Mount, ScreenResume
from textual.screen import Screen
from textual.widgets import Header, Input, Static

from quasar_tui.tui.widgets.footer import ModeFooter
from quasar_tui.tui.widgets.mode_bar import ModeBar

if TYPE_CHECKING:
    from quasar_tui.tui.app import QuasarApp
    from quasar_tui.tui.services import Services

STATUS_ID = "status"
HELP_ACTION = "app.help"


class ModeScreen(Screen[None]):
    """A mode's screen: Header (mode, engine owner), mode bar, `compose_body()`, Footer.

    `HELP` is the short how-to the help screen (`?`) shows above the keys."""

    MODE_TITLE = "Quasar"
    HELP = ""
    BINDINGS = [
        Binding("tab", "app.focus_next", "Next pane", show=False, id="screen.next_pane"),
        Binding(
            "shift+tab",
            "app.focus_previous",
            "Previous pane",
            show=False,
            id="screen.previous_pane",
        ),
        Binding(
            "ctrl+c,super+c", "screen.copy_text", "Copy selected text", show=False, id="screen.copy"
        ),
    ]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=self.quasar.options.clock, icon="◆")
        yield ModeBar()
        yield from self.compose_body()
        yield ModeFooter(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    # The two handlers below are not named `on_screen_resume` and `on_mount`, so that a mode's
    # own hooks of those names (Textual runs every class's) may be async or take no event.

    @on(ScreenResume)
    def _keep_styles(self, event: ScreenResume) -> None:
        """Runs before Textual's own handler, which would restyle the whole screen on every
        mode switch (and the Dashboard's tables would then re-render every cell): a good part
        of a switch's time. A mode's styles only change with the CSS, and Textual re-applies a
        changed CSS to every installed screen itself."""
        event.refresh_styles = False

    @on(Mount)
    def _show_title(self) -> None:
        """Textual runs this for every mode screen as well as their own `on_mount`."""
        self.title = f"Quasar · {self.MODE_TITLE}"

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """Textual's, with the help key first: a narrow footer then cuts a mode's rarer keys,
        never the key that lists them all."""
        bindings = super().active_bindings
        first = {k: b for k, b in bindings.items() if b.binding.action == HELP_ACTION}
        return first | {k: b for k, b in bindings.items() if k not in first}

    @property
    def quasar(self) -> QuasarApp:
        return cast("QuasarApp", self.app)

    @property
    def services(self) -> Services:
        return self.quasar.services

    @staticmethod
    def status_line() -> Static:
        """The one-line summary under the mode's main list (`show_status` fills it)."""
        return Static(id=STATUS_ID, classes="status-line")

    def show_status(self, text: str | Text) -> None:
        self.query_one(f"#{STATUS_ID}", Static).update(
            text if isinstance(text, Text) else Text(text)
        )


class FilterableScreen(ModeScreen):
    """A mode with a `/` filter box: an `Input` with id FILTER_ID (class "filter" keeps it
    hidden until used). Enter keeps the text and goes back to the list; Escape clears it.
    The text, stripped and lower case, is `filter_text`; `apply_filter()` shows what matches."""

    FILTER_ID = "filter"
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="filter.open"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="filter.clear"),
    ]

    filter_text = ""

    def filter_input(self, placeholder: str, *, hidden: bool = True) -> Input:
        return Input(
            placeholder=placeholder, id=self.FILTER_ID, classes="filter" if hidden else None
        )

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
            self.filter_text = event.value.strip().lower()
            self.apply_filter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == self.FILTER_ID:
            if not event.value:
                event.input.remove_class("-shown")
            self.focus_list()

    def apply_filter(self) -> None:
        """Show only the rows containing `filter_text` (empty shows all)."""

    def focus_list(self) -> None:
        """Put the focus back on the mode's main list."""


@dataclass(frozen=True)
class Mode:
    """`slot` is the mode's place, 1..10, and its number key (10 is `0`, as on the keyboard's
    row), fixed so muscle memory holds; `short` is its name in the mode bar when narrow."""

    name: str
    title: str
    slot: int
    screen: type[ModeScreen]
    help: str
    short: str = ""

    @property
    def key(self) -> str:
        return str(self.slot % 10)

    @property
    def short_title(self) -> str:
        return self.short or self.title
