"""Textual's list widgets with vim keys (j/k/g/G) under the shared `list.*` binding ids.

One id per movement across every list, so a keymap entry like `"list.down" = "n"` moves
the cursor in all of them.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable, OptionList, RichLog


def _vim(down: str, up: str, top: str, bottom: str) -> list[Binding]:
    return [
        Binding("j,down", down, "Down", show=False, id="list.down"),
        Binding("k,up", up, "Up", show=False, id="list.up"),
        Binding("g,home", top, "Top", show=False, id="list.top"),
        Binding("G,end", bottom, "Bottom", show=False, id="list.bottom"),
    ]


class VimDataTable(DataTable[object]):
    HELP_GROUP = "Table"
    BINDINGS = _vim("cursor_down", "cursor_up", "scroll_top", "scroll_bottom")


class VimOptionList(OptionList):
    HELP_GROUP = "List"
    BINDINGS = _vim("cursor_down", "cursor_up", "first", "last")


class VimLog(RichLog):
    HELP_GROUP = "Log"
    BINDINGS = _vim("scroll_down", "scroll_up", "scroll_home", "scroll_end")
