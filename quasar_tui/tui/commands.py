"""Every console action by name, for the command palette.

A mode adds its entries in one line each, next to its screen:

    command("subscription: pause", "Pause the selected ones", "pause", mode="subscriptions",
            on_row=True)

`action` is a Textual action string. With `mode` set, the palette switches to that mode first and
runs the action on its screen ("pause" means `screen.action_pause`); without it the action runs
on the app ("switch_mode('live')", "quit"). Each entry shows the key that does the same (the
binding with the same action, or the one named by `binding`), the keymap applied.

`on_row` entries act on a row of their mode. Run from another mode they act on the row the user
was looking at there (`RowRef`: the Chart's series, the Live row), which the target mode finds
(`select_rows`); when there is none, or several, the palette opens the mode and asks which
rather than act on whatever row that mode had highlighted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.screen import Screen

from quasar_tui.tui.keymap import console_bindings


@dataclass(frozen=True)
class PaletteCommand:
    name: str
    help: str
    action: str
    mode: str | None = None
    on_row: bool = False
    binding: str | None = None


@dataclass(frozen=True)
class RowRef:
    """What a row of one mode is about, so that another mode can find its own rows of it."""

    provider: str
    symbol: str | None = None
    interval: str | None = None

    def __str__(self) -> str:
        return " ".join(p for p in (self.provider, self.symbol, self.interval) if p)


class RowScreen(Protocol):
    """A mode screen whose rows palette commands act on."""

    def row_in_view(self) -> RowRef | None:
        """The row the user is looking at, None when there is none."""

    async def select_rows(self, ref: RowRef) -> int:
        """Put the cursor on this mode's row for `ref` (no marks) when there is exactly one;
        returns how many rows are about `ref` (several: shown, for the user to pick)."""


_COMMANDS: dict[str, PaletteCommand] = {}

_SYSTEM_NAMES = {
    "Theme": "view: theme",
    "Screenshot": "view: screenshot",
    "Keys": "view: keys panel",
    "Maximize": "view: maximize",
    "Minimize": "view: minimize",
}
"""Textual's own palette entries, named like ours; its "Quit" is ours ("app: quit")."""


def command(
    name: str,
    summary: str,
    action: str,
    mode: str | None = None,
    *,
    on_row: bool = False,
    binding: str | None = None,
) -> None:
    """Register a palette entry; a later registration with the same name replaces it."""
    _COMMANDS[name] = PaletteCommand(name, summary, action, mode, on_row, binding)


def commands() -> list[PaletteCommand]:
    return sorted(_COMMANDS.values(), key=lambda c: c.name)


def system_commands(found: Iterator[SystemCommand]) -> Iterator[SystemCommand]:
    """Textual's entries renamed "group: action"."""
    for entry in found:
        if entry.title in _SYSTEM_NAMES:
            yield entry._replace(title=_SYSTEM_NAMES[entry.title])


def _mode_screen(app: App[object], mode: str) -> type[Screen[object]] | None:
    for known in getattr(app, "modes", ()):
        if known.name == mode:
            return known.screen
    return None


def _binding(app: App[object], entry: PaletteCommand) -> Binding | None:
    """The binding doing what `entry` does: named, else the one with its action."""
    if entry.binding:
        return console_bindings().get(entry.binding)
    owner = _mode_screen(app, entry.mode) if entry.mode else type(app)
    merged = getattr(owner, "_merged_bindings", None)
    if merged is None:
        return None
    wanted = {entry.action, f"app.{entry.action}", f"screen.{entry.action}"}
    for bindings in merged.key_to_bindings.values():
        for binding in bindings:
            if binding.action in wanted:
                return binding
    return None


def key_for(app: App[object], entry: PaletteCommand) -> str | None:
    """The key shown beside an entry (the keymap's, when it moves the binding)."""
    binding = _binding(app, entry)
    if binding is None:
        return None
    mapped = app._keymap.get(binding.id or "")
    key = (mapped or binding.key).split(",")[0].strip()
    return app.get_key_display(binding.with_key(key, key_display=None))


async def run_command(app: App[object], entry: PaletteCommand) -> None:
    if entry.mode is None:
        await app.run_action(entry.action)
        return
    ref = None
    if entry.on_row and app.current_mode != entry.mode:
        looking_at = getattr(app.screen, "row_in_view", None)
        ref = looking_at() if looking_at is not None else None
        await app.switch_mode(entry.mode)
        if not await _found_row(app, entry, ref):
            return
    elif app.current_mode != entry.mode:
        await app.switch_mode(entry.mode)
    await app.run_action(entry.action, app.screen)


async def _found_row(app: App[object], entry: PaletteCommand, ref: RowRef | None) -> bool:
    """Whether the target mode now has exactly the row for `ref` under its cursor; if not,
    say what the user has to pick (nothing is done on a row they did not choose)."""
    select = getattr(app.screen, "select_rows", None)
    found = await select(ref) if ref is not None and select is not None else -1
    if found == 1:
        return True
    key = key_for(app, entry)
    again = f"press {key}" if key else f"run {entry.name} again"
    if found == -1:
        ask = f"{entry.name}: which one? highlight it here, then {again}"
    elif found == 0:
        ask = f"{entry.name}: nothing here for {ref}; highlight one, then {again}"
    else:
        ask = f"{entry.name}: {found} rows for {ref}; highlight one (or mark some), then {again}"
    app.notify(ask, severity="warning", timeout=8)
    return False


def _display(name: Content, key: str | None) -> Content:
    """The entry's name, then its key."""
    return Content.assemble(name, ("  " + key, "bold $text-accent")) if key else name


class ConsoleCommands(Provider):
    """The palette source listing `commands()`, each with its key; fuzzy-matched on the name."""

    async def discover(self) -> Hits:
        for entry in commands():
            yield DiscoveryHit(
                _display(Content(entry.name), key_for(self.app, entry)),
                partial(run_command, self.app, entry),
                text=entry.name,
                help=entry.help,
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in commands():
            score = matcher.match(entry.name)
            if score > 0:
                yield Hit(
                    score,
                    _display(matcher.highlight(entry.name), key_for(self.app, entry)),
                    partial(run_command, self.app, entry),
                    text=entry.name,
                    help=entry.help,
                )
