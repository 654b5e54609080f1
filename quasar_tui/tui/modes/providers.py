"""Providers mode: registered providers with kind, status and asset count; add, configure,
enable or disable, remove, and refresh their assets in the background."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, ProgressBar, Static

from quasar_tui.core.messages import one_line
from quasar_tui.registry.providers import REFRESH_FAILED
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.sandbox.confine import isolation
from quasar_tui.sandbox.hosted import HostHealth
from quasar_tui.tui.commands import RowRef, command
from quasar_tui.tui.modals.add_provider import AddProviderModal
from quasar_tui.tui.modals.confirm import Confirmed, ConfirmModal
from quasar_tui.tui.modals.preferences import PreferencesModal, schema_of
from quasar_tui.tui.modals.secrets import SecretsModal
from quasar_tui.tui.modes.base import Mode
from quasar_tui.tui.modes.registry_base import RegistryScreen
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.fitted_table import FittedTable

COLUMNS = (
    "Name",
    "Kind",
    "Enabled",
    "Status",
    "Assets",
    "Intervals",
    "Secrets",
    "Source",
    "Host",
    "Detail",
)
# On a narrow terminal these go first (the first first): the name, whether it works and why
# not, and the secrets it lacks stay.
SPARE = ("Intervals", "Source", "Host", "Kind", "Assets")
_STATUS_STYLES = {
    "ok": "green",
    "error": "bold red",
    REFRESH_FAILED: "bold red",
    "connecting": "yellow",
}


def secrets_cell(record: ProviderRecord) -> Text:
    """Key names only: set ones plain, declared but missing ones in red."""
    declared = list(record.capabilities.get("secrets") or [])
    text = Text()
    for name in dict.fromkeys(declared + record.secret_names):
        if text:
            text.append(" ")
        text.append(name, style="" if name in record.secret_names else "red")
        text.append(
            " ✓" if name in record.secret_names else " ✗",
            style="green" if name in record.secret_names else "red",
        )
    return text if text else Text("-", style="dim")


def row_cells(
    record: ProviderRecord, refreshing: bool, host: HostHealth | None = None
) -> tuple[object, ...]:
    """`host` is the provider's sandbox host while the engine runs it."""
    intervals = record.capabilities.get("intervals")
    return (
        Text(record.name, style="bold"),
        record.kind,
        Text("yes", style="green") if record.enabled else Text("no", style="dim"),
        Text(record.status, style=_STATUS_STYLES.get(record.status, "")),
        Text("refreshing...", style="yellow") if refreshing else f"{record.asset_count:,}",
        " ".join(intervals) if intervals is not None else "all",
        secrets_cell(record),
        "bundled" if record.bundled else "user",
        Text(host.summary(), style="red" if host.state.startswith("parked") else "")
        if host
        else Text("-", style="dim"),
        record.status_detail or "",
    )


class ProvidersScreen(RegistryScreen):
    MODE_TITLE = "Providers"
    LIST_ID = "provider-table"
    RELOAD_SECONDS = 5.0
    HELP = (
        "Data providers: bundled ones and your own Python files. a adds a file (it is "
        "validated first), r lists its symbols, m maps them to common symbols, Enter shows "
        "them in the Assets mode. s sets secrets (API keys), p preferences."
    )
    BINDINGS = [
        Binding("a", "add", "Add", tooltip="Add a provider from a Python file", id="providers.add"),
        Binding(
            "r",
            "refresh_assets",
            "Refresh assets",
            tooltip="List the provider's symbols again (in the background)",
            id="providers.refresh_assets",
        ),
        Binding(
            "m", "map_symbols", "Map", tooltip="Map its symbols (Mappings mode)", id="providers.map"
        ),
        Binding(
            "s",
            "secrets",
            "Secrets",
            tooltip="Set its secrets, such as API keys (masked)",
            id="providers.secrets",
        ),
        Binding(
            "p", "preferences", "Prefs", tooltip="Edit its preferences", id="providers.preferences"
        ),
        Binding("e", "toggle_enabled", "Enable/disable", show=False, id="providers.toggle_enabled"),
        Binding(
            "d,delete",
            "remove",
            "Remove",
            show=False,
            tooltip="Remove the provider (asks first)",
            id="providers.remove",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, ProviderRecord] = {}
        self.refreshing: set[str] = set()
        self._focus_next: str | None = None

    def compose_body(self) -> ComposeResult:
        yield self.filter_input(
            "filter providers by name, kind or status (Enter keeps it, Esc clears)"
        )
        yield FittedTable(
            COLUMNS,
            drop_first=SPARE,
            id="provider-table",
            enter="Assets",
            enter_help="Show the provider's assets (Assets mode)",
            zebra_stripes=True,
        )
        with Horizontal(id="provider-progress", classes="status-line"):
            yield Static(id="refresh-text")
            yield ProgressBar(total=None, show_eta=False, show_percentage=False, id="refresh-bar")
        yield self.status_line()

    def on_mount(self) -> None:
        self._show_progress()

    @property
    def table(self) -> FittedTable:
        return self.query_one("#provider-table", FittedTable)

    @property
    def selected(self) -> ProviderRecord | None:
        return self.records.get(self.table.cursor_key or "")

    def reload(self, focus: str | None = None) -> None:
        """Read the providers again, with the cursor on `focus` (else where it was)."""
        self._focus_next = focus
        self.request_load()

    async def load(self) -> None:
        try:
            records = await self.services.providers.list()
        except READ_ERRORS as exc:
            self.report_error(f"cannot list providers: {exc}")
            return
        keep = self._focus_next or (self.selected.name if self.selected else None)
        self._focus_next = None
        self.records = {r.name: r for r in records}
        self._show_rows(keep)

    def row_in_view(self) -> RowRef | None:
        record = self.selected
        return RowRef(record.name) if record is not None else None

    async def select_rows(self, ref: RowRef) -> int:
        """The provider `ref` is about (from the Chart, the Live row...)."""
        await self.load()
        if ref.provider not in self.records:
            return 0
        self.action_clear_filter()
        self.filter_text = ""
        self._show_rows(ref.provider)
        return 1

    def _show_rows(self, keep: str | None) -> None:
        text = self.filter_text
        shown = [
            r
            for r in self.records.values()
            if not text or any(text in v.lower() for v in (r.name, r.kind, r.status))
        ]
        hosts = self.services.view.hosts
        self.table.show_rows(
            [(r.name, row_cells(r, r.name in self.refreshing, hosts.get(r.name))) for r in shown]
        )
        self.table.move_to_key(keep)
        self._update_status(len(shown))

    def apply_filter(self) -> None:
        self._show_rows(self.selected.name if self.selected else None)

    def _update_status(self, shown: int) -> None:
        if not self.records:
            self.show_status("No providers yet: press a to add one from a Python file.")
            return
        missing = sum(
            1
            for r in self.records.values()
            if set(r.capabilities.get("secrets") or ()) - set(r.secret_names)
        )
        count = f"{len(self.records)} providers" + (
            f" ({shown} shown)" if shown < len(self.records) else ""
        )
        self.show_status(  # the isolation last: a narrow terminal cuts it, not the keys
            count
            + (f", {missing} missing secrets (s sets them)" if missing else "")
            + " · ⏎ shows the assets, m maps the symbols"
            + f" · provider code isolation: {isolation()}"
        )

    def _show_progress(self) -> None:
        busy = sorted(self.refreshing)
        self.query_one("#provider-progress").display = bool(busy)
        self.query_one("#refresh-text", Static).update(
            f" refreshing assets of {', '.join(busy)} " if busy else ""
        )

    def _need_selected(self) -> ProviderRecord | None:
        """The highlighted provider, which the other modes then open on (it is the one the
        user works on)."""
        record = self.selected
        if record is None:
            self.notify("no provider selected: press a to add one", severity="warning")
        else:
            self.quasar.chosen_provider = record.name
        return record

    # -- add, preferences, secrets --------------------------------------------------------

    def action_add(self) -> None:
        def added(record: ProviderRecord | None) -> None:
            if record is None:
                return
            self.quasar.chosen_provider = record.name
            self.notify(
                f"added {record.kind} provider {record.name}; r lists its assets"
                + ("; s sets its secrets" if record.capabilities.get("secrets") else "")
            )
            for notice in record.notices:
                self.notify(notice, severity="warning", timeout=10)
            self.reload(record.name)

        self.app.push_screen(AddProviderModal(), added)

    def action_preferences(self) -> None:
        record = self._need_selected()
        if record is None:
            return
        if not schema_of(record):
            self.notify(f"{record.name} has no preferences to set")
            return

        def saved(updated: ProviderRecord | None) -> None:
            if updated is not None and updated.preferences != record.preferences:
                self.notify(f"preferences of {record.name} saved")
                self.reload()

        self.app.push_screen(PreferencesModal(record), saved)

    def action_secrets(self) -> None:
        record = self._need_selected()
        if record is None:
            return

        def saved(updated: ProviderRecord | None) -> None:
            if updated is None:
                return
            names = ", ".join(updated.secret_names) or "none"
            self.notify(f"secrets of {record.name} saved; keys set: {names}")
            for notice in updated.notices:
                self.notify(notice, severity="warning", timeout=10)
            self.reload()

        self.app.push_screen(SecretsModal(record), saved)

    # -- enable, remove, refresh -----------------------------------------------------------

    async def action_toggle_enabled(self) -> None:
        record = self._need_selected()
        if record is None:
            return
        try:
            updated = await self.services.providers.set_enabled(record.name, not record.enabled)
        except READ_ERRORS as exc:
            self.report_error(str(exc))
            return
        self.notify(f"{record.name} {'enabled' if updated.enabled else 'disabled'}")
        self.reload()

    async def action_remove(self) -> None:
        record = self._need_selected()
        if record is None:
            return
        try:
            subscriptions = len(await self.services.subscriptions.list(record.name))
            mappings = len(await self.services.mappings.list(provider=record.name))
        except READ_ERRORS as exc:
            self.report_error(str(exc))
            return
        details = [
            f"Goes with it: {record.asset_count:,} assets, {mappings:,} mappings, "
            f"{subscriptions:,} subscriptions.",
            "Stored bars and ticks are kept unless you tick the box.",
        ]

        def confirmed(answer: Confirmed | None) -> None:
            if answer is not None:
                self.run_task("remove provider", self._remove, record.name, answer.option)

        self.app.push_screen(
            ConfirmModal(
                f"Remove provider {record.name}?",
                details,
                confirm_label="Remove",
                option="also delete its stored bars and ticks",
            ),
            confirmed,
        )

    async def _remove(self, name: str, purge: bool) -> None:
        try:
            result = await self.services.providers.remove(name, purge_data=purge)
        except READ_ERRORS as exc:
            self.report_error(str(exc))
            return
        kept = sum(result["kept"].values())
        self.notify(f"removed {name}" + (f"; {kept:,} stored rows kept" if kept else ""))
        self.reload()

    def action_refresh_assets(self) -> None:
        record = self._need_selected()
        if record is None:
            return
        if record.name in self.refreshing:
            self.notify(f"the assets of {record.name} are being refreshed already")
            return
        self.refreshing.add(record.name)
        self._show_progress()
        self._show_rows(record.name)
        self.run_task(f"refresh {record.name}", self._refresh_assets, record.name)

    async def _refresh_assets(self, name: str) -> None:
        """Load the provider, list its symbols and store them; the keys stay live meanwhile."""
        try:
            report = await self.services.providers.refresh_assets(name)
        except READ_ERRORS as exc:
            self.report_error(one_line(exc), "asset refresh")
        else:
            self.notify(
                f"{name}: {report.total:,} assets ({report.added:,} new, "
                f"{report.updated:,} changed, {report.deactivated:,} delisted)",
                title="assets refreshed",
            )
        finally:
            self.refreshing.discard(name)
            self._show_progress()
        self.reload()

    # -- to the other modes ------------------------------------------------------------------

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        await self._open("assets")

    async def action_map_symbols(self) -> None:
        await self._open("mappings")

    async def _open(self, mode: str) -> None:
        record = self._need_selected()
        if record is None:
            return
        await self.app.switch_mode(mode)  # it works on `chosen_provider`, set just above


MODE = Mode(
    "providers",
    "Providers",
    2,
    ProvidersScreen,
    "add, configure, enable and remove data providers; refresh their assets",
    short="Prov",
)

command(
    "provider: add", "Add a provider from a Python file (validated first)", "add", mode="providers"
)
command(
    "provider: preferences",
    "Edit the selected provider's preferences",
    "preferences",
    mode="providers",
    on_row=True,
)
command(
    "provider: secrets",
    "Set the selected provider's secrets (masked)",
    "secrets",
    mode="providers",
    on_row=True,
)
command(
    "provider: enable/disable",
    "Enable or disable the selected provider",
    "toggle_enabled",
    mode="providers",
    on_row=True,
)
command(
    "provider: refresh assets",
    "List the selected provider's symbols again",
    "refresh_assets",
    mode="providers",
    on_row=True,
)
command(
    "provider: remove",
    "Remove the selected provider (asks first)",
    "remove",
    mode="providers",
    on_row=True,
)
command("provider: filter", "Filter the providers shown", "filter", mode="providers")
command(
    "provider: map symbols",
    "Map the selected provider's symbols (Mappings mode)",
    "map_symbols",
    mode="providers",
    on_row=True,
)
