"""The footer of every mode: Textual's, rebuilt only when the keys it shows change, and
showing only the keys that fit whole (never "p P" cut mid-word)."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel

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
        """Show every key, then, once laid out, hide those that end past the palette key
        (the help key comes first; a group of keys goes whole)."""
        for child in self.children:
            child.display = True
        self.call_after_refresh(self._hide_overflow)

    def _hide_overflow(self, tries: int = 10) -> None:
        """`tries`: refreshes to wait for the keys' layout (a busy machine may paint the
        footer before its keys have places; judged then, nothing would be cut)."""
        palette = [k for k in self.query(FooterKey) if k.has_class("-command-palette")]
        if tries and (not self.size.width or any(k.region.width == 0 for k in palette)):
            self.call_after_refresh(self._hide_overflow, tries - 1)
            return
        room = self.size.width - sum(k.outer_size.width for k in palette)
        shown = [child for child in self.children if child not in palette]
        cut = next(
            (i for i, c in enumerate(shown) if c.virtual_region_with_margin.right > room), None
        )
        if cut is None:
            return
        if isinstance(shown[cut], FooterLabel) and cut > 0:
            cut -= 1  # a group's keys go with its label
        for child in shown[cut:]:
            child.display = False
