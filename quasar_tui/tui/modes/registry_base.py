"""What the registry-facing modes (Providers, Assets, Mappings, Subscriptions) share: their
style sheet, background work that reports failures instead of crashing, and a text filter."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from functools import partial
from typing import Any

from textual.binding import Binding
from textual.widgets import Input, Select
from textual.worker import Worker, WorkerState

from quasar_tui.engine.engine import one_line
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.tui.modes.base import ModeScreen
from quasar_tui.tui.services import READ_ERRORS, LogEntry
from quasar_tui.tui.widgets.marked_table import MarkedTable
from quasar_tui.tui.widgets.provider_picker import ProviderPicker

CSS_FILE = "../registry.tcss"


class RegistryScreen(ModeScreen):
    """A mode screen whose reads and writes run as workers: the keys stay live while the
    database (or a provider) works, and a failure becomes a notification."""

    CSS_PATH = CSS_FILE
    FILTER_ID = "filter"

    def run_task(self, name: str, work: Callable[..., Coroutine[Any, Any, None]], *args: Any,
                 exclusive: bool = False) -> Worker[None]:
        """Run `work(*args)` as a worker (called when it starts, so an exclusive one replaced
        before it ran leaves no coroutine behind)."""
        return self.run_worker(partial(work, *args), name=name, group=name,
                               exclusive=exclusive, exit_on_error=False)

    def report_error(self, message: str, what: str | None = None) -> None:
        """A failure the user must see: a notification now and a line in the Log mode."""
        source = f"{self.MODE_TITLE.lower()}: {what}" if what else self.MODE_TITLE.lower()
        self.quasar.publish_log(LogEntry(datetime.now(UTC), "error", source, message),
                                notify=False)
        self.notify(message, title=what or "", severity="error", timeout=10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The backstop: the tasks catch what a user can act on; anything else lands here."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(f"{event.worker.name} failed: {one_line(event.worker.error)}")

    # -- the `/` filter box (an Input with class "filter", shown while in use) -------------

    @property
    def filter_box(self) -> Input:
        return self.query_one(f"#{self.FILTER_ID}", Input)

    def action_filter(self) -> None:
        self.filter_box.add_class("-shown")
        self.filter_box.focus()

    def action_clear_filter(self) -> None:
        box = self.filter_box
        box.value = ""
        box.remove_class("-shown")
        self.focus_list()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == self.FILTER_ID:
            self.apply_filter(event.value.strip().lower())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == self.FILTER_ID:
            if not event.value:
                event.input.remove_class("-shown")
            self.focus_list()

    def apply_filter(self, text: str) -> None:
        """Show only rows containing `text` (lower case; empty shows all)."""

    def focus_list(self) -> None:
        """Put the focus back on the mode's main list."""


class ProviderScreen(RegistryScreen):
    """A mode that works on one provider at a time, picked at the top (`p`).

    Subclasses compose a `ProviderPicker` with id "provider" and implement `load()`, which
    `request_load()` runs as the one current load (a newer request cancels an older one).
    """

    PROVIDER_BINDINGS = [Binding("p", "pick_provider", "Provider", id="provider.pick")]

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
        self._set_provider(self.picker.set_providers(records, self.provider))

    def _set_provider(self, name: str | None) -> None:
        """Marks name symbols of one provider: another provider starts with none."""
        if name != self.provider:
            self.provider = name
            for table in self.query(MarkedTable):
                table.set_marks(())

    async def show_provider(self, name: str) -> None:
        """Work on `name` (another mode sends the user here for it)."""
        self._set_provider(name)
        await self.refresh_providers()
        self.request_load()

    async def on_screen_resume(self) -> None:
        await self.refresh_providers()
        self.request_load()

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

    def request_load(self, delay: float = 0.0) -> None:
        self.run_task(f"load {self.MODE_TITLE.lower()}", self.load, delay, exclusive=True)

    async def load(self, delay: float = 0.0) -> None:
        """Read the rows for `self.provider` (after `delay`: typing debounces this way)."""
