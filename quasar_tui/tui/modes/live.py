"""Live mode: the conflated quote table, a filter, and Enter to chart the symbol."""

from __future__ import annotations

from time import monotonic

from textual.app import ComposeResult

from quasar_tui.store.series import common_symbols
from quasar_tui.tui.commands import RowRef, command
from quasar_tui.tui.modes.base import FilterableScreen, Mode
from quasar_tui.tui.modes.chart import open_chart
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.live_table import COLUMNS, LiveTable


class LiveScreen(FilterableScreen):
    MODE_TITLE = "Live"
    HELP = (
        "The latest quote of every live symbol, a few repaints a second (prices flash "
        "when they move). s sorts by the next column, S flips the order, u goes back to "
        "your own order, in which J and K move the highlighted row. / filters; Enter "
        "charts the symbol. Subscribe a symbol live (Subscriptions mode, 5) to see it."
    )

    def compose_body(self) -> ComposeResult:
        yield self.filter_input("filter symbols (Enter keeps it, Esc clears)")
        yield LiveTable(
            self.services.book,
            hz=self.quasar.options.repaint_hz,
            flash=self.quasar.options.animation,
            empty_text="waiting for ticks: subscribe a symbol live (mode 5, Subscriptions)",
        )
        yield self.status_line()

    async def on_mount(self) -> None:
        self.query_one(LiveTable).focus()
        self.set_interval(1.0, self._update_status)
        self._update_status()
        await self._load_names()

    async def on_screen_resume(self) -> None:
        self._update_status()
        await self._load_names()

    async def _load_names(self) -> None:
        """Common symbols beside the provider's (mappings change in the Mappings mode)."""
        try:
            commons = await common_symbols(self.services.db)
        except READ_ERRORS as exc:
            self.notify(f"cannot read the symbol mappings: {exc}", severity="error")
            return
        self.query_one(LiveTable).set_commons(commons)

    def _update_status(self) -> None:
        """Every second, on screen only: counting the ticking symbols walks the whole book."""
        if not self.is_current:
            return
        table = self.query_one(LiveTable)
        active, rate = self.services.book.activity(monotonic())
        sort = (
            "your order"
            if table.sort_column is None
            else next(c.title for c in COLUMNS if c.key == table.sort_column)
            + (" desc" if table.sort_reverse else " asc")
        )
        shown = f"{len(table.order)}/{len(self.services.book)}"
        flt = f"  filter: {table.filter_text!r}" if table.filter_text else ""
        self.show_status(
            f"{shown} symbols, {active} ticking, {rate:,.1f} ticks/s  sort: {sort}{flt}"
        )

    def apply_filter(self) -> None:
        self.query_one(LiveTable).set_filter(self.filter_text)
        self._update_status()

    def focus_list(self) -> None:
        self.query_one(LiveTable).focus()

    async def on_live_table_selected(self, message: LiveTable.Selected) -> None:
        provider, symbol = message.key
        await open_chart(self, provider, symbol)

    def row_in_view(self) -> RowRef | None:
        key = self.query_one(LiveTable).cursor_key
        return RowRef(*key) if key is not None else None

    async def select_rows(self, ref: RowRef) -> int:
        table = self.query_one(LiveTable)
        key = (ref.provider, ref.symbol or "")
        if key not in table.order and table.filter_text:
            self.action_clear_filter()
            table.set_filter("")
        if key not in table.order:
            return 0
        table.cursor = table.order.index(key)
        return 1

    def action_sort(self) -> None:
        self.query_one(LiveTable).action_cycle_sort()

    def action_reverse(self) -> None:
        self.query_one(LiveTable).action_reverse_sort()

    def action_user_order(self) -> None:
        self.query_one(LiveTable).action_user_order()

    def action_chart(self) -> None:
        self.query_one(LiveTable).action_select()


MODE = Mode("live", "Live", 6, LiveScreen, "ticking quotes, conflated per symbol")

command("live: filter", "Filter the live table by symbol or provider", "filter", mode="live")
command(
    "live: sort by next column",
    "Cycle the live table's sort column",
    "sort",
    mode="live",
    binding="live.sort",
)
command(
    "live: reverse sort",
    "Flip the live table's sort direction",
    "reverse",
    mode="live",
    binding="live.sort_reverse",
)
command(
    "live: my order",
    "Back to your own row order (J/K move rows)",
    "user_order",
    mode="live",
    binding="live.user_order",
)
command(
    "live: chart symbol",
    "Open the chart of the selected symbol",
    "chart",
    mode="live",
    on_row=True,
    binding="live.select",
)
