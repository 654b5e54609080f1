"""Textual's list widgets with vim keys (j/k/g/G) under the shared `list.*` binding ids.

One id per movement across every list, so a keymap entry like `"list.down" = "n"` moves
the cursor in all of them. Each widget declares its whole key set (Textual's own are not
inherited), so the help screen lists every key once, in the same words everywhere.

What Enter does depends on the screen (chart it, accept it, show its assets), so a list gets
that as `enter=` ("Chart", "Accept"...) for the footer, with a longer `enter_help` for the help
screen; without it Enter does nothing there.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding, BindingsMap
from textual.widgets import DataTable, OptionList, RichLog
from textual.widgets.data_table import ColumnKey, RowKey

from quasar_tui.tui.widgets.safe_text import safe_cell

ENTER_ID = "list.open"


def moves(
    down: str,
    up: str,
    top: str,
    bottom: str,
    page_down: str = "page_down",
    page_up: str = "page_up",
) -> list[Binding]:
    return [
        Binding("j,down", down, "Down", show=False, id="list.down"),
        Binding("k,up", up, "Up", show=False, id="list.up"),
        Binding("g,home", top, "Top", show=False, id="list.top"),
        Binding("G,end", bottom, "Bottom", show=False, id="list.bottom"),
        Binding("ctrl+d,pagedown", page_down, "Page down", show=False, id="list.page_down"),
        Binding("ctrl+u,pageup", page_up, "Page up", show=False, id="list.page_up"),
    ]


_SIDEWAYS = [
    Binding("left", "scroll_left", "Scroll left", show=False, id="list.left"),
    Binding("right", "scroll_right", "Scroll right", show=False, id="list.right"),
]


class _EnterMeans:
    """Mixin: bind Enter to `ENTER_ACTION` for this instance, described as `enter`."""

    ENTER_ACTION = "select"
    _bindings: BindingsMap  # the widget's, which this mixin is mixed into

    def bind_enter(self, enter: str | None, tooltip: str = "") -> None:
        if enter:
            self._bindings.key_to_bindings["enter"] = [
                Binding("enter", self.ENTER_ACTION, enter, tooltip=tooltip, id=ENTER_ID)
            ]


class VimDataTable(_EnterMeans, DataTable[object], inherit_bindings=False):
    HELP_GROUP = "Table"
    ENTER_ACTION = "select_cursor"
    BINDINGS = [*moves("cursor_down", "cursor_up", "scroll_top", "scroll_bottom"), *_SIDEWAYS]

    def __init__(
        self,
        *,
        enter: str | None = None,
        enter_help: str = "",
        id: str | None = None,
        classes: str | None = None,
        zebra_stripes: bool = False,
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=zebra_stripes)
        self.bind_enter(enter, enter_help)

    def add_row(self, *cells: object, **kwargs: Any) -> RowKey:
        """Every cell is escaped here: names and errors come from providers."""
        return super().add_row(*(safe_cell(c) for c in cells), **kwargs)

    def update_cell(
        self, row_key: RowKey | str, column_key: ColumnKey | str, value: object, **kwargs: Any
    ) -> None:
        super().update_cell(row_key, column_key, safe_cell(value), **kwargs)


class VimOptionList(_EnterMeans, OptionList, inherit_bindings=False):
    HELP_GROUP = "List"
    BINDINGS = [*moves("cursor_down", "cursor_up", "first", "last")]

    def __init__(
        self, *, enter: str | None = None, enter_help: str = "", id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.bind_enter(enter, enter_help)


class VimLog(RichLog, inherit_bindings=False):
    HELP_GROUP = "Log"
    BINDINGS = [*moves("scroll_down", "scroll_up", "scroll_home", "scroll_end"), *_SIDEWAYS]
