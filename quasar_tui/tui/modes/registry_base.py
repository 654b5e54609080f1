"""What the registry-facing modes (Providers, Assets, Mappings, Subscriptions) share: their
style sheet, the `/` filter, background work that reports failures instead of crashing, and
loads that coalesce instead of cancelling each other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from textual import on
from textual.binding import Binding
from textual.events import ScreenResume
from textual.widgets import Select
from textual.worker import Worker, WorkerState

from quasar_tui.core.clock import utc_now
from quasar_tui.core.messages import one_line
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.tui.modes.base import FilterableScreen
from quasar_tui.tui.services.log import LogEntry
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.marked_table import MarkedTable
from quasar_tui.tui.widgets.provider_picker import ProviderPicker

CSS_FILE = "../registry.tcss"


class Coalesced:
    """An async job run for the newest request only, and never cancelled half-way (that would
    leave its database connection mid-transaction): a request made while it runs is served by
    one more run after it; `delay` debounces (typing, moving through a list)."""

    def __init__(
        self, screen: RegistryScreen, name: str, job: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self._screen = screen
        self._name = name
        self._job = job
        self._wanted = 0
        self._delay = 0.0
        self._running = False

    def request(self, delay: float = 0.0) -> None:
        self._wanted += 1
        self._delay = delay
        if not self._running:
            self._running = True
            self._screen.run_task(self._name, self._run)

    async def _run(self) -> None:
        try:
            done = None
            while done != self._wanted:
                if self._delay:
                    await asyncio.sleep(self._delay)
                done = self._wanted
                await self._job()
        finally:
            self._running = False


class RegistryScreen(FilterableScreen):
    """A mode screen whose reads and writes run as workers: the keys stay live while the
    database (or a provider) works, and a failure becomes a notification.

    Subclasses implement `load()`; `request_load()` runs it in the background."""

    CSS_PATH = CSS_FILE
    LIST_ID = ""
    """The mode's main list: focused when the screen opens and when a filter is done."""
    RELOAD_SECONDS: float | None = None
    """Read the rows again this often while the screen shows (edits made elsewhere, the
    engine's progress); None reads them when the screen is shown and after each change."""

    def __init__(self) -> None:
        super().__init__()
        self._loads = Coalesced(self, f"load {self.MODE_TITLE.lower()}", self.load)

    def on_mount(self) -> None:
        """Runs after a subclass's own `on_mount` (Textual calls each class's)."""
        self.focus_list()
        if self.RELOAD_SECONDS:
            self.set_interval(self.RELOAD_SECONDS, self._auto_reload)

    def focus_list(self) -> None:
        self.query_one(f"#{self.LIST_ID}").focus()

    @on(ScreenResume)
    def _load_on_resume(self) -> None:
        """Runs after a subclass's own `on_screen_resume` (Textual calls each class's); not
        named `on_screen_resume` itself so a subclass's may be async."""
        self.request_load()

    def _auto_reload(self) -> None:
        if self.is_current:
            self.request_load()

    def run_task(
        self,
        name: str,
        work: Callable[..., Coroutine[Any, Any, None]],
        *args: Any,
        exclusive: bool = False,
    ) -> Worker[None]:
        """Run `work(*args)` as a worker (called when it starts, so an exclusive one replaced
        before it ran leaves no coroutine behind)."""
        return self.run_worker(
            partial(work, *args), name=name, group=name, exclusive=exclusive, exit_on_error=False
        )

    def report_error(self, message: str, what: str | None = None) -> None:
        """A failure the user must see: a notification now and a line in the Log mode."""
        source = f"{self.MODE_TITLE.lower()}: {what}" if what else self.MODE_TITLE.lower()
        self.quasar.log_entries.add(LogEntry(utc_now(), "error", source, message), notify=False)
        self.notify(message, title=what or "", severity="error", timeout=10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The backstop: the tasks catch what a user can act on; anything else lands here."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(f"{event.worker.name} failed: {one_line(event.worker.error)}")

    def request_load(self, delay: float = 0.0) -> None:
        """Read the rows again, `delay` seconds from now (typing debounces this way)."""
        self._loads.request(delay)

    async def load(self) -> None:
        """Read the mode's rows and show them."""


class ProviderScreen(RegistryScreen):
    """A mode that works on one provider at a time, picked at the top (`p`). The pick is
    shared: Assets and Mappings open on the provider last picked in either.

    Subclasses compose a `ProviderPicker` with id "provider" and implement `load()` for
    `self.provider`."""

    PROVIDER_BINDINGS = [
        Binding(
            "p",
            "pick_provider",
            "Provider",
            tooltip="Pick the provider to work on",
            id="provider.pick",
        )
    ]

    def __init__(self) -> None:
        super().__init__()
        self.provider: str | None = None
        self.provider_records: dict[str, ProviderRecord] = {}

    @property
    def picker(self) -> ProviderPicker:
        return self.query_one("#provider", ProviderPicker)

    async def refresh_providers(self) -> None:
        """Read the provider list again; the pick stays unless that provider is gone."""
        try:
            records = await self.services.providers.list()
        except READ_ERRORS as exc:
            self.report_error(f"cannot list providers: {exc}")
            return
        self.provider_records = {r.name: r for r in records}
        keep = self.quasar.chosen_provider or self.provider
        self._set_provider(self.picker.set_providers(records, keep))

    def _set_provider(self, name: str | None) -> None:
        """Marks name symbols of one provider: another provider starts with none."""
        if name is not None:
            self.quasar.chosen_provider = name
        if name != self.provider:
            self.provider = name
            for table in self.query(MarkedTable):
                table.set_marks(())

    async def on_screen_resume(self) -> None:
        """Before the load `RegistryScreen._load_on_resume` asks for: which provider."""
        await self.refresh_providers()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "provider" and isinstance(event.value, str):
            event.stop()
            if event.value != self.provider:
                self._set_provider(event.value)
                self.request_load()
                self.focus_list()

    def action_pick_provider(self) -> None:
        self.picker.focus()
        self.picker.expanded = True
