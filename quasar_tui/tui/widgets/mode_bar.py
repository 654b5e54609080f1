"""The row under the header naming every mode and the key that opens it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widget import Widget

if TYPE_CHECKING:
    from quasar_tui.tui.app import QuasarApp


class ModeBar(Widget):
    """`1 Dashboard  2 Providers ...`; the mode of the screen it sits on is highlighted, and on
    a narrow terminal the others go by their short names so all of them fit."""

    DEFAULT_CSS = """
    ModeBar { height: 1; background: $panel; color: $text-muted; }
    ModeBar > .mode-bar--key { color: $text-accent; text-style: bold; }
    ModeBar > .mode-bar--current { background: $primary; color: $text; text-style: bold; }
    """
    COMPONENT_CLASSES = {"mode-bar--key", "mode-bar--current"}

    def render(self) -> Text:
        """Full titles when they fit, else short ones for the modes not shown."""
        full = self._bar(short=False)
        return full if full.cell_len <= self.size.width else self._bar(short=True)

    def _bar(self, short: bool) -> Text:
        app = cast("QuasarApp", self.app)
        keymap = app._keymap
        key_style = self.get_component_rich_style("mode-bar--key")
        current_style = self.get_component_rich_style("mode-bar--current")
        text = Text(no_wrap=True, overflow="ellipsis")
        for mode in app.modes:
            key = keymap.get(f"mode.{mode.name}", str(mode.slot)).split(",")[0]
            current = mode.screen is type(self.screen)
            title = mode.short_title if short and not current else mode.title
            text.append(f" {key} ", current_style if current else key_style)
            text.append(f"{title} ", current_style if current else "")
        return text
