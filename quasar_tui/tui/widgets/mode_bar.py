"""The row under the header naming every mode and the key that opens it; a click opens it too."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.events import Click
from textual.widget import Widget

if TYPE_CHECKING:
    from quasar_tui.tui.app import QuasarApp

# How the modes other than the current one are named, widest first: the first that fits is
# drawn, so every mode keeps its place on any terminal from 60 columns up.
_STYLES = ("full", "short", "compact", "initials")


class ModeBar(Widget):
    """`1 Dashboard  2 Providers ...`; the mode of the screen it sits on is highlighted, and on
    a narrow terminal the others go by shorter names so all of them fit."""

    DEFAULT_CSS = """
    ModeBar { height: 1; background: $panel; color: $text-muted; }
    ModeBar > .mode-bar--key { color: $text-accent; text-style: bold; }
    ModeBar > .mode-bar--current { background: $primary; color: $text; text-style: bold; }
    """
    COMPONENT_CLASSES = {"mode-bar--key", "mode-bar--current"}

    def __init__(self) -> None:
        super().__init__()
        self._spans: list[tuple[int, str]] = []
        """(end column, mode name) of each mode as last drawn, for clicks."""

    def render(self) -> Text:
        """The widest naming that fits; the narrowest when none does."""
        keys = self._keys()
        for style in _STYLES:
            bar, spans = self._bar(style, keys)
            if bar.cell_len <= self.size.width:
                break
        self._spans = spans
        return bar

    async def on_click(self, event: Click) -> None:
        name = next((mode for end, mode in self._spans if event.x < end), None)
        if name is not None:
            await self.app.run_action(f"app.switch_mode('{name}')")

    def _keys(self) -> dict[str, str]:
        """Binding id -> the key that runs it now, the keymap applied (it may have moved a
        mode's key, or given it to another binding)."""
        bindings = self.app._bindings.copy()
        if self.app._keymap:
            bindings.apply_keymap(self.app._keymap)
        found: dict[str, str] = {}
        for key_bindings in bindings.key_to_bindings.values():
            for binding in key_bindings:
                if binding.id:
                    found.setdefault(binding.id, self.app.get_key_display(binding))
        return found

    def _bar(self, style: str, keys: dict[str, str]) -> tuple[Text, list[tuple[int, str]]]:
        app = cast("QuasarApp", self.app)
        key_style = self.get_component_rich_style("mode-bar--key")
        current_style = self.get_component_rich_style("mode-bar--current")
        gap = " " if style in ("full", "short") else ""
        text = Text(no_wrap=True, overflow="ellipsis")
        spans: list[tuple[int, str]] = []
        for mode in app.modes:
            current = mode.screen is type(self.screen)
            if current:
                title = mode.title if style in ("full", "short") else mode.short_title
            elif style == "full":
                title = mode.title
            elif style == "initials":
                title = mode.short_title[:2]
            else:
                title = mode.short_title
            key = keys.get(f"mode.{mode.name}", "·")
            text.append(f" {key} ", current_style if current else key_style)
            text.append(f"{title}{gap}", current_style if current else "")
            spans.append((text.cell_len, mode.name))
        return text, spans
