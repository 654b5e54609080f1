"""Add a provider from a file: the first Enter validates it (in a child process) and shows what
the validator found, the second adds it. A bad file shows the validator's reason under the path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Static

from quasar_tui.core.errors import NotFoundError, QuasarError
from quasar_tui.registry.records import ProviderRecord, ValidationReport
from quasar_tui.sandbox.loader import InvalidProviderError
from quasar_tui.tui.modals.form import Field, FormModal

SUGGEST_SCAN = 2000


def complete_path(value: str) -> str | None:
    """`value` completed with the first matching entry of its directory (a .py file or a
    directory first; directories get a slash), or None."""
    head, sep, stem = value.rpartition("/")
    folder = Path(head).expanduser() if head else Path("/" if sep else ".")
    try:
        names = sorted(
            (entry.name + ("/" if entry.is_dir() else ""))
            for entry in islice(folder.iterdir(), SUGGEST_SCAN)
            if entry.name.startswith(stem) and (stem or not entry.name.startswith("."))
        )
    except OSError:
        return None
    preferred = [n for n in names if n.endswith((".py", "/"))] or names
    return value + preferred[0][len(stem) :] if preferred else None


def expand(text: str) -> Path:
    return Path(text).expanduser()


class PathSuggester(Suggester):
    """Completes the path typed so far (Right accepts), from the file system."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value)


def describe(report: ValidationReport) -> Table:
    """The validator's findings, one line per capability."""
    caps: dict[str, Any] = report.capabilities
    settings = caps.get("configurable") or {}
    calls, seconds = (caps.get("rate_limit") or [None, None])[:2]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("valid", Text("yes: Enter adds it", style="bold green"))
    grid.add_row("name", Text(report.name, style="bold"))
    grid.add_row("kind", f"{report.kind} (class {report.class_name})")
    grid.add_row("intervals", " ".join(caps.get("intervals") or []) or "-")
    grid.add_row("history", "yes" if caps.get("has_history") else "no")
    grid.add_row("secrets", ", ".join(caps.get("secrets") or []) or "none")
    grid.add_row(
        "preferences",
        ", ".join(f"{key} ({spec.get('type', 'str')})" for key, spec in settings.items()) or "none",
    )
    if calls is not None:
        grid.add_row("rate limit", f"{calls} calls per {seconds}s")
    grid.add_row("sha256", report.sha256[:16])
    return grid


class AddProviderModal(FormModal[ProviderRecord]):
    FORM_TITLE = "Add a provider from a Python file"
    SUBMIT_LABEL = "Validate (Enter)"
    BUSY_TEXT = "Working..."

    def __init__(self) -> None:
        super().__init__()
        self.report: ValidationReport | None = None
        self.checked_path: str | None = None

    def compose_fields(self) -> Iterator[Widget]:
        yield Field(
            "Provider file",
            Input(id="path-input", suggester=PathSuggester(), placeholder="path/to/provider.py"),
            "Enter validates the file, Enter again adds it; Right completes a path",
            id="path",
        )
        yield Static("", id="validation", markup=False)
        yield Checkbox("Replace a provider of the same name", id="replace")

    def on_mount(self) -> None:
        self.query_one("#path-input", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """A new path needs a new validation before anything is added."""
        if self.report is not None and event.value != self.checked_path:
            self.report = None
            self.query_one("#validation", Static).update("")
            self.set_submit_label(self.SUBMIT_LABEL)

    async def submit(self) -> None:
        text = self.query_one("#path-input", Input).value.strip()
        if not text:
            self.fail("path", "type the path of a provider .py file")
            return
        path = expand(text)
        if self.report is None or self.checked_path != text:
            await self._validate(path, text)
            return
        report = self.report
        replace = self.query_one("#replace", Checkbox).value
        if not replace and await self._registered(report.name):
            self.fail(
                "path",
                f"a provider named {report.name} is already registered; tick "
                "Replace to replace its code",
            )
            return
        try:
            record = await self.services.providers.add(path, replace=replace)
        except InvalidProviderError as exc:
            self.fail("path", exc.reason)
            return
        except QuasarError as exc:
            self.fail("path", str(exc))
            return
        self.dismiss(record)

    async def _validate(self, path: Path, text: str) -> None:
        shown = self.query_one("#validation", Static)
        shown.update(Text("validating in a child process...", style="dim"))
        try:
            report = await self.services.providers.validate_file(path)
        except InvalidProviderError as exc:
            shown.update("")
            self.fail("path", exc.reason)
            return
        except QuasarError as exc:
            shown.update("")
            self.fail("path", str(exc))
            return
        self.report, self.checked_path = report, text
        shown.update(describe(report))
        self.set_submit_label(f"Add {report.name} (Enter)")

    async def _registered(self, name: str) -> bool:
        try:
            await self.services.providers.get(name)
        except NotFoundError:
            return False
        return True
