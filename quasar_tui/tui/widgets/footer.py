"""The footer of every mode: Textual's, rebuilt only when the keys it shows change, and
showing only the keys that fit whole (never "p P" cut mid-word)."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

Shown = tuple[tuple[str, str, str, bool, str | None], ...]


def shown_bindings(screen: Screen) -> Shown:
    """What the footer draws for `screen`: each shown key, its label, and whether it works."""
    return tuple(
        (binding.key, binding.action, binding.description, enabled, tooltip)
        for _, binding, enabled, tooltip in screen.active_bindings.values()
        if binding.show
    )


class ModeFooter(Footer):
    """Textual's footer removes and mounts all its key widgets each time the screen's bindings
    are refreshed (every mode switch, every focus move): about 10 ms each time, mostly for the
    same keys. This one skips that when the keys shown are the same as last time."""

    def __init__(self, *, compact: bool = False) -> None:
        super().__init__(compact=compact)
        self._shown: Shown | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = shown_bindings(screen)
        if shown == self._shown:
            return
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._shown = shown
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        await super().recompose()
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Hide the keys from the first one that does not fit whole (the help key comes
        first, the palette key sits on the right)."""
        keys = list(self.query(FooterKey))
        palette = [k for k in keys if k.has_class("-command-palette")]
        room = self.size.width - sum(k.render().cell_len + 1 for k in palette)
        for key in keys:
            if key in palette:
                continue
            room -= key.render().cell_len + 1
            key.display = room >= 0
