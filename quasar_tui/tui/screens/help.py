"""`?`: what the screen underneath is for, then every binding of it with the keys in force and
each binding's id.

The ids are what a keymap file remaps, so the help screen doubles as the keymap reference. A
binding's `tooltip`, when it has one, is the longer description shown here (the footer shows
the short one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static

from quasar_tui.tui.widgets.vim import moves


@dataclass(frozen=True)
class HelpRow:
    group: str
    keys: str
    description: str
    binding_id: str


def _group(node: DOMNode) -> str:
    if isinstance(node, App):
        return "Everywhere"
    return str(
        getattr(node, "MODE_TITLE", None)
        or getattr(node, "HELP_GROUP", None)
        or type(node).__name__
    )


def _effective(node: DOMNode, app: App[object]) -> BindingsMap:
    """The node's bindings with the user's keymap applied, as Textual will dispatch them."""
    bindings = node._bindings.copy()
    if app._keymap:
        bindings.apply_keymap(app._keymap)
    return bindings


def _nodes(screen: Screen[object]) -> list[DOMNode]:
    """The screen, each kind of widget on it whose keys can work, then the app."""
    nodes: list[DOMNode] = [screen]
    seen_types: set[type] = {type(screen)}
    for widget in screen.walk_children(Widget):
        # A widget's keys work only while it has focus: skip what cannot take it or is hidden.
        shown = all(node.display for node in widget.ancestors_with_self if node is not screen)
        usable = shown and widget.focusable and widget._bindings.key_to_bindings
        if usable and type(widget) not in seen_types:
            seen_types.add(type(widget))
            nodes.append(widget)
    nodes.append(screen.app)
    return nodes


def screen_bindings(screen: Screen[object]) -> list[HelpRow]:
    """One row per thing a key does: bindings of one node that say the same (Textual's
    ctrl+home beside our g for "Top") share a row."""
    app = screen.app
    rows: list[HelpRow] = []
    for node in _nodes(screen):
        grouped: dict[str, tuple[Binding, list[str]]] = {}
        for key, binding in _effective(node, app):
            if binding.system:
                continue
            description = binding.tooltip or binding.description or binding.action
            entry = grouped.setdefault(description, (binding, []))
            entry[1].append(key)
        group = _group(node)
        generic = sorted(
            grouped.items(), key=lambda item: (item[1][0].id or "").startswith("screen.")
        )  # the screen's own keys first, Tab and copy after them
        for description, (binding, keys) in generic:
            keys.sort(key=lambda k: len(k) > 1)  # letters first: "j, down", not "down, j"
            shown_keys = ", ".join(
                app.get_key_display(binding.with_key(k, binding.key_display)) for k in keys
            )
            rows.append(HelpRow(group, shown_keys, description, binding.id or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    """The mode's how-to and a table of its keys; Escape, q or ? closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
        *moves("scroll(1)", "scroll(-1)", "scroll_to(0)", "scroll_to(-1)", "page(1)", "page(-1)"),
    ]

    def __init__(self, rows: list[HelpRow], title: str, intro: str = "") -> None:
        super().__init__()
        self.rows = rows
        self.help_title = title
        self.intro = intro

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(f"{self.help_title}   (Esc closes)", id="help-title", markup=False)
            with VerticalScroll(id="help-scroll", can_focus=False):
                if self.intro:
                    yield Static(self.intro, id="help-intro", markup=False)
                yield Static(keys_table(self.rows), id="help-keys")
            yield Static(
                "Remap any key by its id in keymap.toml (data dir) or --keymap FILE, e.g. "
                '"mode.live" = "f6".  Ctrl+P or : lists every action by name.',
                id="help-hint",
            )

    @property
    def _scroll(self) -> VerticalScroll:
        return self.query_one("#help-scroll", VerticalScroll)

    def action_scroll(self, delta: int) -> None:
        self._scroll.scroll_relative(y=delta, animate=False)

    def action_scroll_to(self, row: int) -> None:
        scroll = self._scroll
        scroll.scroll_to(y=0 if row >= 0 else scroll.max_scroll_y, animate=False)

    def action_page(self, direction: int) -> None:
        scroll = self._scroll
        scroll.scroll_relative(y=direction * max(1, scroll.size.height - 1), animate=False)


def show_help(app: App[Any]) -> None:
    """The help of the screen shown (not of the help itself)."""
    screen = app.screen
    if isinstance(screen, HelpScreen):
        return
    app.push_screen(
        HelpScreen(screen_bindings(screen), screen.title or "Quasar", getattr(screen, "HELP", ""))
    )


def keys_table(rows: list[HelpRow]) -> Table:
    """Keys, what they do (wrapped to the width), and the id to remap them by."""
    table = Table(box=None, expand=True, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("Keys", no_wrap=True, style="bold cyan")
    table.add_column("Action", ratio=1)
    table.add_column("Id", no_wrap=True, style="dim")
    group = None
    for row in rows:
        if row.group != group:
            group = row.group
            table.add_row(Text(group, style="bold"), "", "")
        table.add_row(f"  {row.keys}", row.description, row.binding_id)
    return table
