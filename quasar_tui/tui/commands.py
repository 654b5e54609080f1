"""Every console action by name, for the command palette.

A mode adds its entries in one line each, next to its screen:

    command("subscription: pause", "Pause the selected ones", "pause", mode="subscriptions")

`action` is a Textual action string. With `mode` set, the palette switches to that mode first and
runs the action on its screen ("pause" means `screen.action_pause`); without it the action runs
on the app ("switch_mode('live')", "quit").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    name: str
    help: str
    action: str
    mode: str | None = None


_COMMANDS: dict[str, PaletteCommand] = {}


def command(name: str, summary: str, action: str, mode: str | None = None) -> None:
    """Register a palette entry; a later registration with the same name replaces it."""
    _COMMANDS[name] = PaletteCommand(name, summary, action, mode)


def commands() -> list[PaletteCommand]:
    return sorted(_COMMANDS.values(), key=lambda c: c.name)


async def run_command(app: App[object], entry: PaletteCommand) -> None:
    if entry.mode is None:
        await app.run_action(entry.action)
        return
    if app.current_mode != entry.mode:
        await app.switch_mode(entry.mode)
    await app.run_action(entry.action, app.screen)


class ConsoleCommands(Provider):
    """The palette source listing `commands()`; fuzzy-matched on the name."""

    async def discover(self) -> Hits:
        for entry in commands():
            yield DiscoveryHit(entry.name, partial(run_command, self.app, entry), help=entry.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in commands():
            score = matcher.match(entry.name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(entry.name),
                    partial(run_command, self.app, entry),
                    help=entry.help,
                )
