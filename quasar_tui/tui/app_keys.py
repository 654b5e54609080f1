"""The keys that work everywhere and their palette entries: a number key and a "mode: NAME"
entry per mode, then help, the palette, an alert at the price under the cursor, and quit."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from quasar_tui.tui.commands import command
from quasar_tui.tui.modes import MODES

for _mode in MODES:
    command(f"mode: {_mode.name}", f"{_mode.title}: {_mode.help}", f"switch_mode('{_mode.name}')")
command("app: help", "Show the keys of the current screen", "help")
command("app: quit", "Quit the console (the engine stops if it runs here)", "quit")
command(
    "alert: at this price",
    "A price alert for the Live row or the Chart bar under the cursor",
    "alert_here",
)

APP_BINDINGS: list[BindingType] = [
    *(
        Binding(
            mode.key,
            f"app.switch_mode('{mode.name}')",
            mode.title,
            show=False,
            tooltip=f"{mode.title}: {mode.help}",
            id=f"mode.{mode.name}",
        )
        for mode in MODES
    ),
    Binding(
        "question_mark",
        "app.help",
        "Help",
        tooltip="What this screen is for, and all its keys",
        id="app.help",
    ),
    Binding(
        "ctrl+p", "app.command_palette", "Commands", show=False, priority=True, id="app.palette"
    ),
    Binding("colon", "app.command_palette", "Commands", show=False, id="app.palette_colon"),
    Binding(
        "A",
        "app.alert_here",
        "Alert here",
        show=False,
        tooltip="Live or Chart: an alert when the price crosses the one under the cursor",
        id="app.alert_here",
    ),
    Binding(
        "q",
        "app.quit",
        "Quit",
        tooltip="Quit (an engine running here stops first)",
        id="app.quit",
    ),
]
