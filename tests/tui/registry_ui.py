"""Helpers for the registry modes' console tests (Providers, Assets, Mappings, Subscriptions)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Static
from tui_helpers import started, wait_for

PROVIDER_FILES = Path(__file__).resolve().parent.parent / "provider_files"
SIZE = (140, 45)


def plain(static: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(static.content)
    return console.export_text()


def field_error(app: App[object], field_id: str) -> str:
    """The one-line complaint under a form field ("" when it is fine)."""
    return plain(app.screen.query_one(f"#{field_id} .field-error", Static)).strip()


def form_error(app: App[object]) -> str:
    return plain(app.screen.query_one("#form-error", Static)).strip()


def notices(app: App[object]) -> list[str]:
    return [n.message for n in app._notifications]


async def open_mode(pilot: Pilot[object], key: str, screen_type: type) -> object:
    """Wait for the console to start, then press the mode's number key."""
    await started(pilot)
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen_type))
    return pilot.app.screen


async def until_screen(pilot: Pilot[object], screen_type: type) -> object:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen_type))
    return pilot.app.screen
