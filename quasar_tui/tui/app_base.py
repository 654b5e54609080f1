"""Textual's App as the console needs it: what it changes of Textual's own behaviour, apart
from the console's wiring (app.py).

Toasts are shown escaped, never as markup; only a mode's first switch holds frames; the driver
survives a terminal that goes away; Textual's palette entries are named like the console's; a
screenshot lands where the user can find it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from textual.app import App, SystemCommand
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import AwaitMount

from quasar_tui.core.text import printable
from quasar_tui.tui.commands import system_commands
from quasar_tui.tui.screenshot import default_name, save_svg
from quasar_tui.tui.terminal import TerminalDriver


class ConsoleBase(App[int]):
    """The App the console is built on (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._shown_modes: set[str] = set()
        self._hold_frames = True

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Toasts carry provider names and errors: shown escaped and never read as markup,
        whatever a caller (Widget.notify passes markup=True) asks."""
        super().notify(
            printable(message),
            title=printable(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's palette entries, named like the console's ("view: theme")."""
        return system_commands(iter(super().get_system_commands(screen)))

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        return TerminalDriver if driver is LinuxDriver else driver

    def switch_mode(self, mode: str) -> AwaitMount:
        """Textual holds every frame for 50 ms on a mode switch (`delay_update`), to hide a
        screen being built. A mode's screen stays installed once built, so only the first
        switch to a mode is held: the others show at once."""
        self._hold_frames = mode not in self._shown_modes
        try:
            waiter = super().switch_mode(mode)
        finally:
            self._hold_frames = True
        self._shown_modes.add(mode)
        return waiter

    def delay_update(self, delay: float = 0.05) -> None:
        if self._hold_frames:
            super().delay_update(delay)

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Save to Downloads or the current directory (or `path`), and say where or why not
        (`time_format` is Textual's, unused: the name is `default_name`'s)."""
        saved = save_svg(
            self.export_screenshot(),
            filename or default_name(datetime.now()),
            Path(path) if path else None,
        )
        if saved.path is None:
            self.notify(f"not saved: {saved.problem}", title="Screenshot", severity="error")
        else:
            self.notify(f"saved to {saved.path}", title="Screenshot")
        return None
