"""Dashboard: engine owner and health, providers, writers, per-subscription freshness, errors."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widgets import Static

from quasar_tui.core.clock import utc_now
from quasar_tui.core.text import printable
from quasar_tui.quality.assigned import SeriesKey
from quasar_tui.quality.calendars import Calendar
from quasar_tui.registry.subscriptions import SubscriptionRecord
from quasar_tui.sandbox.hosted import HostHealth
from quasar_tui.tui.commands import RowRef, command
from quasar_tui.tui.modals.api_keys import ApiKeysModal
from quasar_tui.tui.modes.base import Mode, ModeScreen
from quasar_tui.tui.modes.chart import open_chart
from quasar_tui.tui.modes.subscriptions import shown_state
from quasar_tui.tui.services.feed import EngineNews
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.fitted_table import FittedTable
from quasar_tui.tui.widgets.health import LEVEL_STYLES, EnginePanel, freshness, series_calendars
from quasar_tui.tui.widgets.vim import VimDataTable

DB_REFRESH_SECONDS = 5.0
NARROW = 100
SHORT = 32
RECENT_ERRORS = 6
_LEVEL_RANK = {"stale": 0, "late": 1, "ok": 2, "idle": 3}
FRESHNESS_COLUMNS = (
    "Provider",
    "Symbol",
    "Interval",
    "Mode",
    "Last bar (UTC)",
    "Freshness",
    "State",
)
"""The subscriptions table's; State is last: it holds errors, which may be long."""


def _fill(table: VimDataTable, rows: list[tuple[object, ...]]) -> None:
    """Replace the rows, keeping the cursor where it was."""
    cursor = table.cursor_coordinate
    table.clear()
    for row in rows:
        table.add_row(*row)
    if rows:
        table.move_cursor(row=min(cursor.row, len(rows) - 1), animate=False)


class DashboardScreen(ModeScreen):
    MODE_TITLE = "Dashboard"
    HELP = (
        "The engine at a glance: who runs it, what it writes, each provider's state and "
        "each subscription's freshness (stalest first), and the recent errors (all of them "
        "are in the Log mode, 8). Tab moves between the tables; Enter on a subscription "
        "opens its chart. K lists, creates and revokes the HTTP API's keys. The number keys "
        "switch modes; the footer shows each mode's keys."
    )
    BINDINGS = [
        Binding(
            "r", "refresh", "Refresh", tooltip="Read everything again now", id="dashboard.refresh"
        ),
        Binding(
            "K",
            "api_keys",
            "API keys",
            tooltip="List, create and revoke the HTTP API's keys",
            id="dashboard.api_keys",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.fresh_keys: list[tuple[str, str]] = []
        """(provider, symbol) of each row of the subscriptions table, in order."""
        self.fresh_intervals: list[str] = []
        self.subscriptions: list[SubscriptionRecord] = []
        self.calendars: dict[SeriesKey, Calendar] = {}

    def compose_body(self) -> ComposeResult:
        with Vertical(id="dashboard"):
            with Horizontal(id="dash-top"):
                yield EnginePanel(id="engine-panel", classes="panel")
                yield VimDataTable(id="writers", classes="panel")
            yield VimDataTable(id="providers", classes="panel")
            yield FittedTable(
                FRESHNESS_COLUMNS,
                drop_first=("Mode", "Provider", "Last bar (UTC)"),
                id="freshness",
                classes="panel",
                enter="Chart",
                enter_help="Chart the subscription's symbol (Chart mode)",
            )
            yield Static(id="errors", classes="panel")

    async def on_mount(self) -> None:
        self.query_one("#engine-panel").border_title = "Engine"
        titles = {
            "writers": ("Writers", ("Table", "Queue", "Lag", "Rows/s", "Retry")),
            "providers": (
                "Providers",
                ("Provider", "Kind", "Enabled", "Status", "Live", "Assets", "Detail"),
            ),
        }
        for table_id, (title, columns) in titles.items():
            table = self.query_one(f"#{table_id}", VimDataTable)
            table.border_title = title
            table.add_columns(*columns)
        self.query_one("#freshness").border_title = "Subscriptions"
        self.query_one("#errors").border_title = "Recent errors"
        self.query_one("#freshness", VimDataTable).focus()
        self.set_interval(1.0, self._refresh_live)
        self.set_interval(DB_REFRESH_SECONDS, self._refresh_db)
        self._refresh_live()
        await self._refresh_db()

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")
        self.set_class(event.size.height < SHORT, "-short")

    async def action_refresh(self) -> None:
        self._refresh_live()
        await self._refresh_db()

    def action_api_keys(self) -> None:
        self.app.push_screen(ApiKeysModal())

    def on_screen_resume(self) -> None:
        self._refresh_live()

    @on(EngineNews)
    def _engine_news(self) -> None:
        """A job run, provider state or error: the panels show it now, not at the next tick."""
        self._refresh_live()

    def _refresh_live(self) -> None:
        """The in-memory parts: engine panel, writers, errors (every second, on screen only)."""
        if not self.is_current:
            return
        services = self.services
        view = services.view
        self.query_one(EnginePanel).show(view, services.book, utc_now())
        _fill(
            self.query_one("#writers", VimDataTable),
            [
                (
                    w.table,
                    f"{w.queue_depth}/{w.queue_capacity}",
                    f"{w.lag_seconds:.1f}s",
                    f"{w.rows_per_second:,.0f}",
                    str(w.pending_retry),
                )
                for w in sorted(view.writers.values(), key=lambda w: w.table)
            ],
        )
        errors = list(view.errors)[-RECENT_ERRORS:]
        text = Text()
        for entry in reversed(errors):
            text.append(f"{entry.at:%H:%M:%S} ", style="dim")
            text.append(f"{printable(entry.source)}: ", style="bold")
            text.append(f"{printable(entry.message)}\n", style="red")
        self.query_one("#errors", Static).update(text if errors else Text("none", style="dim"))
        if view.backfills:
            self._show_subscriptions()  # their progress moves every second

    async def _refresh_db(self) -> None:
        """Registry reads: providers and subscriptions (every few seconds, on screen only)."""
        if not self.is_current:
            return
        services = self.services
        try:
            providers = await services.providers.list()
            self.subscriptions = await services.subscriptions.list()
            self.calendars = await series_calendars(services.db)
        except READ_ERRORS as exc:
            self.notify(str(exc), severity="error")
            return
        live, hosts = services.view.providers, services.view.hosts
        _fill(
            self.query_one("#providers", VimDataTable),
            [
                (
                    p.name,
                    p.kind,
                    "yes" if p.enabled else "no",
                    p.status,
                    live[p.name].state if p.name in live else "-",
                    f"{p.asset_count:,}",
                    _detail(
                        (live[p.name].detail if p.name in live else None) or p.status_detail,
                        hosts.get(p.name),
                    ),
                )
                for p in providers
            ],
        )
        self._show_subscriptions()

    def _show_subscriptions(self) -> None:
        """Stalest first; a running backfill says how far it is in the State column."""
        now = utc_now()
        view = self.services.view
        written = view.last_bars
        rows = []
        for s in self.subscriptions:
            last = max(
                (
                    t
                    for t in (s.last_bar_ts, written.get((s.provider, s.symbol, s.interval)))
                    if t is not None
                ),
                default=None,
            )
            market = self.calendars.get((s.provider, s.symbol, s.interval))
            fresh = freshness(s.interval, s.enabled, last, now, market)
            backfill = view.backfills.get(s.id)
            state = f"backfill {backfill.summary()}" if backfill else s.last_error or shown_state(s)
            rows.append(
                (
                    _LEVEL_RANK[fresh.level],
                    (
                        s.provider,
                        s.symbol,
                        s.interval,
                        s.mode,
                        f"{last:%Y-%m-%d %H:%M}" if last else "-",
                        Text(fresh.label, style=LEVEL_STYLES[fresh.level]),
                        state,
                    ),
                )
            )
        rows.sort(key=lambda r: r[0])
        self.fresh_keys = [(row[0], row[1]) for _, row in rows]
        self.fresh_intervals = [row[2] for _, row in rows]
        table = self.query_one("#freshness", FittedTable)
        cursor = table.cursor_row
        table.show_rows([(str(i), row) for i, (_, row) in enumerate(rows)])
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)

    def _fresh_index(self, row: int) -> int | None:
        """The subscription shown in `row` of its table (a click on a title sorts it), as an
        index into `fresh_keys`."""
        key = self.query_one("#freshness", FittedTable).key_at(row)
        return int(key) if key is not None and int(key) < len(self.fresh_keys) else None

    def row_in_view(self) -> RowRef | None:
        """The highlighted subscription (the table a palette command may act on)."""
        at = self._fresh_index(self.query_one("#freshness", FittedTable).cursor_row)
        return None if at is None else RowRef(*self.fresh_keys[at], self.fresh_intervals[at])

    async def on_data_table_row_selected(self, event: VimDataTable.RowSelected) -> None:
        event.stop()
        at = self._fresh_index(event.cursor_row) if event.data_table.id == "freshness" else None
        if at is not None:
            await open_chart(self, *self.fresh_keys[at])


def _detail(detail: str | None, host: HostHealth | None) -> str:
    """The provider's last detail, then its sandbox host (state, isolation, restarts, memory,
    CPU) while the engine runs it."""
    return "; ".join(part for part in (detail, host.summary() if host else None) if part)


MODE = Mode(
    "dashboard",
    "Dashboard",
    1,
    DashboardScreen,
    "engine owner, provider health, freshness, write rate, errors",
    short="Dash",
)

command("dashboard: refresh", "Read providers and subscriptions again", "refresh", mode="dashboard")
command(
    "api keys: list, create, revoke",
    "The HTTP API's keys (quasar serve)",
    "api_keys",
    mode="dashboard",
)
