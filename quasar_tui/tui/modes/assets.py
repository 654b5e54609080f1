"""Assets mode: one provider's instruments, searched as you type; map one to a common symbol
or subscribe the marked ones."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable

from quasar_tui.registry.assets import AssetRecord
from quasar_tui.registry.suggestions import MappingSuggester
from quasar_tui.tui.commands import command
from quasar_tui.tui.modals.edit_common import open_map
from quasar_tui.tui.modals.subscribe import open_subscribe
from quasar_tui.tui.modes.base import Mode
from quasar_tui.tui.modes.registry_base import ProviderScreen
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.marked_table import MarkedTable
from quasar_tui.tui.widgets.provider_picker import ProviderPicker

SHOWN = 500
TYPING_PAUSE = 0.15
COLUMNS = ("Symbol", "Name", "Class", "Exchange", "Base", "Quote", "Common")


def asset_cells(asset: AssetRecord) -> tuple[object, ...]:
    symbol = Text(asset.symbol, style="bold" if asset.active else "dim strike")
    return (
        symbol,
        asset.name or "",
        asset.asset_class or "",
        asset.exchange or "",
        asset.base or "",
        asset.quote or "",
        Text(asset.common_symbol, style="green") if asset.common_symbol else Text("-", style="dim"),
    )


class AssetsScreen(ProviderScreen):
    MODE_TITLE = "Assets"
    LIST_ID = "asset-table"
    HELP = (
        "One provider's instruments (p picks the provider). / searches symbols and names "
        "as you type, Enter goes back to the list. space marks rows; s or Enter subscribes "
        "the marked ones (or the highlighted one); m maps one to a common symbol."
    )
    FILTER_ID = "asset-search"
    BINDINGS = [
        *ProviderScreen.PROVIDER_BINDINGS,
        Binding(
            "slash",
            "filter",
            "Search",
            tooltip="Search symbols and names as you type",
            id="filter.open",
        ),
        Binding(
            "s",
            "subscribe",
            "Subscribe",
            show=False,
            tooltip="Subscribe the marked or highlighted assets (a form)",
            id="assets.subscribe",
        ),
        Binding(
            "m",
            "map",
            "Map",
            tooltip="Map the highlighted asset to a common symbol",
            id="assets.map",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.assets: dict[str, AssetRecord] = {}
        self.total = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="mode-top"):
            yield ProviderPicker(id="provider")
            yield self.filter_input("search symbols and names (Enter: list)", hidden=False)
        yield MarkedTable(
            COLUMNS,
            id="asset-table",
            drop_first=("Class", "Exchange", "Base", "Quote"),
            enter="Subscribe",
            enter_help="Subscribe the marked or highlighted assets (a form)",
        )
        yield self.status_line()

    @property
    def table(self) -> MarkedTable:
        return self.query_one("#asset-table", MarkedTable)

    def apply_filter(self) -> None:
        self.request_load(TYPING_PAUSE)

    async def load(self) -> None:
        provider, search = self.provider, self.filter_text
        if provider is None:
            self.assets = {}
            self.table.set_rows([])
            self.show_status("No providers yet: add one in the Providers mode (2).")
            return
        try:
            found = await self.services.assets.list(provider, search or None, limit=SHOWN)
            total = await self.services.assets.count(provider)
        except READ_ERRORS as exc:
            self.show_status(f"cannot list the assets of {provider}: {exc}")
            return
        if provider != self.provider or search != self.filter_text:
            return
        self.assets = {a.symbol: a for a in found}
        self.table.set_rows((a.symbol, asset_cells(a)) for a in found)
        self._update_status(total)

    def _update_status(self, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        total = self.total
        if not total:
            self.show_status(
                f"{self.provider} lists no assets yet: refresh them in the "
                "Providers mode (2, then r)"
            )
            return
        shown = len(self.assets)
        what = (
            f"{shown:,} best matches for {self.filter_text!r}"
            if self.filter_text
            else f"{shown:,} of {total:,} active assets"
            if shown < total
            else f"{total:,} active assets"
        )
        marked = f" · {len(self.table.marks)} marked" if self.table.marks else ""
        self.show_status(
            f"{self.provider}: {what}{marked} · ⏎ or s subscribes the marked (or highlighted) ones"
        )

    def on_marked_table_marks_changed(self, event: MarkedTable.MarksChanged) -> None:
        self._update_status()

    def _highlighted(self) -> AssetRecord | None:
        key = self.table.cursor_key
        asset = self.assets.get(key) if key else None
        if asset is None:
            self.notify("no asset selected", severity="warning")
        return asset

    # -- map and subscribe -----------------------------------------------------------------

    async def action_map(self) -> None:
        asset = self._highlighted()
        if asset is None:
            return
        proposal = asset.common_symbol
        if proposal is None:
            try:
                options = await MappingSuggester(self.services.db).alternatives(
                    asset.provider, asset.symbol, 1
                )
            except READ_ERRORS as exc:
                self.report_error(str(exc))
                return
            proposal = options[0].common_symbol if options else asset.parts.common
        open_map(
            self,
            self.services.mappings,
            asset.provider,
            asset.symbol,
            asset.name,
            proposal,
            self.request_load,
        )

    async def action_subscribe(self) -> None:
        symbols = self.table.selected_keys()
        if self.provider is None or not symbols:
            self.notify("no asset selected", severity="warning")
            return
        await open_subscribe(
            self, self.provider, symbols, then=lambda _added: self.table.set_marks(())
        )

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        await self.action_subscribe()


MODE = Mode("assets", "Assets", 3, AssetsScreen, "a provider's instruments: search, map, subscribe")

command("asset: search", "Search the provider's assets as you type", "filter", mode="assets")
command(
    "asset: map", "Map the selected asset to a common symbol", "map", mode="assets", on_row=True
)
command(
    "asset: subscribe",
    "Subscribe the marked (or selected) assets",
    "subscribe",
    mode="assets",
    on_row=True,
)
command(
    "asset: pick provider", "Show the assets of another provider", "pick_provider", mode="assets"
)
