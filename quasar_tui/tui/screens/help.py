"""`?`: every binding of the screen underneath, with the keys in force and each binding's id.

The ids are what a keymap file remaps, so the help screen doubles as the keymap reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static


@dataclass(frozen=True)
class HelpRow:
    group: str
    keys: str
    description: str
    binding_id: str


def _group(node: DOMNode) -> str:
    if isinstance(node, App):
        return "Global"
    return str(getattr(node, "MODE_TITLE", None) or getattr(node, "HELP_GROUP", None)
               or type(node).__name__)


def _effective(node: DOMNode, app: App[object]) -> BindingsMap:
    """The node's bindings with the user's keymap applied, as Textual will dispatch them."""
    bindings = node._bindings.copy()
    if app._keymap:
        bindings.apply_keymap(app._keymap)
    return bindings


def screen_bindings(screen: Screen[object]) -> list[HelpRow]:
    """The screen's own bindings, then its widgets', then the app's; one row per binding."""
    app = screen.app
    nodes: list[DOMNode] = [screen]
    seen_types: set[type] = {type(screen)}
    for widget in screen.walk_children(Widget):
        # A widget's keys work only while it has focus: skip what cannot take it or is hidden.
        shown = all(node.display for node in widget.ancestors_with_self if node is not screen)
        usable = shown and widget.focusable and widget._bindings.key_to_bindings
        if usable and type(widget) not in seen_types:
            seen_types.add(type(widget))
            nodes.append(widget)
    nodes.append(app)
    rows: list[HelpRow] = []
    for node in nodes:
        grouped: dict[tuple[str, str], tuple[Binding, list[str]]] = {}
        for key, binding in _effective(node, app):
            if not binding.system:
                grouped.setdefault((binding.id or "", binding.action), (binding, []))[1].append(key)
        group = _group(node)
        for binding, keys in grouped.values():
            keys.sort(key=lambda k: len(k) > 1)  # letters first: "j, down", not "down, j"
            shown_keys = ", ".join(
                app.get_key_display(binding.with_key(k, binding.key_display)) for k in keys
            )
            rows.append(HelpRow(group, shown_keys, binding.description or binding.action,
                                binding.id or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    """A table of bindings; Escape, q or ? closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
        Binding("j", "scroll(1)", "Down", show=False, id="help.down"),
        Binding("k", "scroll(-1)", "Up", show=False, id="help.up"),
    ]

    def __init__(self, rows: list[HelpRow], title: str) -> None:
        super().__init__()
        self.rows = rows
        self.help_title = title

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(f"Keys: {self.help_title}", id="help-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Static(
                "Remap any key by id in keymap.toml (data dir) or --keymap FILE, e.g. "
                '"mode.live" = "f6".  Ctrl+P or : opens the command palette.',
                id="help-hint",
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Where", "Keys", "Action", "Id")
        for row in self.rows:
            table.add_row(row.group, row.keys, row.description, row.binding_id)
        table.focus()

    def action_scroll(self, delta: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=table.cursor_row + delta)
