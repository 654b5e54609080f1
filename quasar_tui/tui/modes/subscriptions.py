"""Subscriptions mode: what the engine collects, how fresh it is, and the keys to add, pause,
resume, delete and backfill (on the marked rows, or the highlighted one)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from quasar_tui.core.clock import utc_now
from quasar_tui.engine.progress import BackfillProgress
from quasar_tui.quality.assigned import SeriesKey
from quasar_tui.quality.calendars import Calendar
from quasar_tui.registry.subscriptions import SubscriptionRecord
from quasar_tui.store.series import Series, common_symbols
from quasar_tui.tui.commands import RowRef, command
from quasar_tui.tui.modals.confirm import Confirmed, ConfirmModal
from quasar_tui.tui.modals.subscribe import open_subscribe
from quasar_tui.tui.modes.base import Mode
from quasar_tui.tui.modes.chart import open_chart
from quasar_tui.tui.modes.registry_base import RegistryScreen
from quasar_tui.tui.services.reads import READ_ERRORS
from quasar_tui.tui.widgets.health import LEVEL_STYLES, freshness, series_calendars
from quasar_tui.tui.widgets.marked_table import MarkedTable

# Symbol: the common symbol (the provider's own when unmapped); Provider: where it comes
# from, with the provider's symbol when that differs (KRAKEN:XBT/USD).
COLUMNS = (
    "Id",
    "Symbol",
    "Provider",
    "Interval",
    "Mode",
    "State",
    "Last bar (UTC)",
    "Freshness",
    "Error",
)
_STATE_STYLES = {
    "error": "bold red",
    "running": "yellow",
    "ok": "green",
    "paused": "dim",
    "stopped": "dim",
    "resuming": "yellow",
}
_LISTED = 5


def shown_state(s: SubscriptionRecord) -> str:
    """The state to show: "paused" as soon as it is paused, and "resuming" (not the engine's
    "paused" of a moment ago) from its resume until the engine has taken it up."""
    if not s.enabled:
        return "paused"
    if s.state == "paused" and not s.last_error:
        return "resuming"
    return s.state


def subscription_cells(
    s: SubscriptionRecord,
    common: str | None,
    last: datetime | None,
    now: datetime,
    calendar: Calendar | None = None,
    backfill: BackfillProgress | None = None,
) -> tuple[object, ...]:
    state = shown_state(s)
    if backfill is not None:
        state = f"backfill {backfill.summary()}"
    fresh = freshness(s.interval, s.enabled, last, now, calendar)
    return (
        str(s.id),
        Text(common or s.symbol, style="bold"),
        Series(s.provider, s.symbol, common).source,
        s.interval,
        s.mode,
        Text(state, style=_STATE_STYLES.get("running" if backfill else state, "")),
        f"{last:%Y-%m-%d %H:%M}" if last else "-",
        Text(fresh.label, style=LEVEL_STYLES[fresh.level]),
        Text(s.last_error or "", style="red"),
    )


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


class SubscriptionsScreen(RegistryScreen):
    MODE_TITLE = "Subscriptions"
    LIST_ID = "subscription-table"
    RELOAD_SECONDS = 5.0
    HELP = (
        "What the engine collects: one row per provider, symbol, interval and mode. a "
        "subscribes (a form). The keys act on the marked rows (space marks), or on the "
        "highlighted one: p pauses, u resumes, b backfills now, d deletes. Enter charts it."
    )
    BINDINGS = [
        Binding("a", "add", "Add", tooltip="Subscribe symbols (a form)", id="subscriptions.add"),
        Binding(
            "p",
            "pause",
            "Pause",
            tooltip="Pause the marked or highlighted ones",
            id="subscriptions.pause",
        ),
        Binding(
            "u",
            "resume",
            "Resume",
            tooltip="Resume the marked or highlighted ones",
            id="subscriptions.resume",
        ),
        Binding(
            "b",
            "backfill",
            "Backfill",
            tooltip="Run the historical jobs of the marked or highlighted ones now",
            id="subscriptions.backfill",
        ),
        Binding(
            "d,delete",
            "delete",
            "Delete",
            tooltip="Delete the marked or highlighted ones (asks first)",
            id="subscriptions.delete",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, SubscriptionRecord] = {}
        self.commons: dict[tuple[str, str], str] = {}
        self.calendars: dict[SeriesKey, Calendar] = {}
        self._progress_shown: dict[int, BackfillProgress] = {}

    def on_mount(self) -> None:
        self.set_interval(1.0, self._follow_backfills)

    def _follow_backfills(self) -> None:
        """Backfill progress moves every second (the rows are redrawn when it changed)."""
        if self.services.view.backfills != self._progress_shown:
            self._show_rows()

    def compose_body(self) -> ComposeResult:
        yield self.filter_input("filter by symbol, provider, interval, mode or state (Esc clears)")
        yield MarkedTable(
            COLUMNS,
            id="subscription-table",
            drop_first=("Id", "Provider", "Mode", "Last bar (UTC)"),
            enter="Chart",
            enter_help="Chart the symbol (Chart mode)",
        )
        yield self.status_line()

    @property
    def table(self) -> MarkedTable:
        return self.query_one("#subscription-table", MarkedTable)

    async def load(self) -> None:
        try:
            records = await self.services.subscriptions.list()
            self.commons = await common_symbols(self.services.db)
            self.calendars = await series_calendars(self.services.db)
        except READ_ERRORS as exc:
            self.show_status(f"cannot list subscriptions: {exc}")
            return
        self.records = {str(r.id): r for r in records}
        self.table.keep_marks(self.records)
        self._show_rows()

    def _show_rows(self) -> None:
        now = utc_now()
        written = self.services.view.last_bars
        running = self._progress_shown = dict(self.services.view.backfills)
        text = self.filter_text
        rows = []
        for key, s in self.records.items():
            state = shown_state(s)
            common = self.commons.get((s.provider, s.symbol))
            if text and not any(
                text in v.lower()
                for v in (s.provider, s.symbol, common or "", s.interval, s.mode, state)
            ):
                continue
            last = max(
                (t for t in (s.last_bar_ts, written.get((s.provider, s.symbol, s.interval))) if t),
                default=None,
            )
            market = self.calendars.get((s.provider, s.symbol, s.interval))
            cells = subscription_cells(s, common, last, now, market, running.get(s.id))
            rows.append((key, cells))
        self.table.set_rows(rows)
        self._update_status()

    def apply_filter(self) -> None:
        self._show_rows()

    def _update_status(self) -> None:
        if not self.records:
            self.show_status(
                "No subscriptions yet: press a to subscribe (or s in the Assets mode)."
            )
            return
        paused = sum(1 for s in self.records.values() if not s.enabled)
        errors = sum(1 for s in self.records.values() if s.enabled and s.state == "error")
        marked = f" · {len(self.table.marks)} marked" if self.table.marks else ""
        self.show_status(
            f"{len(self.records):,} subscriptions, {paused} paused, {errors} "
            f"failing{marked} · keys act on the marked rows (or the highlighted "
            "one)"
        )

    def on_marked_table_marks_changed(self, event: MarkedTable.MarksChanged) -> None:
        self._update_status()

    def row_in_view(self) -> RowRef | None:
        record = self.records.get(self.table.cursor_key or "")
        return RowRef(record.provider, record.symbol, record.interval) if record else None

    async def select_rows(self, ref: RowRef) -> int:
        """The subscription of `ref`'s series at its interval (else at any interval); one is
        highlighted, unmarked the others; several are shown, filtered by the symbol."""
        await self.load()
        same = [
            k
            for k, s in self.records.items()
            if s.provider == ref.provider and s.symbol == ref.symbol
        ]
        exact = [k for k in same if self.records[k].interval == ref.interval]
        found = exact or same
        if len(found) != 1:
            if found and ref.symbol:
                self.filter_box.value = ref.symbol
                self.filter_box.add_class("-shown")
            return len(found)
        if found[0] not in self.table.keys:
            self.action_clear_filter()
            self.filter_text = ""
            self._show_rows()
        self.table.set_marks(())
        self.table.move_cursor(row=self.table.keys.index(found[0]), animate=False)
        return 1

    def _selected(self) -> list[SubscriptionRecord]:
        chosen = [self.records[k] for k in self.table.selected_keys() if k in self.records]
        if not chosen:
            self.notify("no subscription selected", severity="warning")
        return chosen

    # -- actions ---------------------------------------------------------------------------

    async def action_add(self) -> None:
        """The form opens on the provider last picked in the Assets or Mappings mode, else on
        the highlighted row's."""
        current = self.records.get(self.table.cursor_key or "")
        provider = self.quasar.chosen_provider or (current.provider if current else None)
        await open_subscribe(self, provider, (), then=lambda _added: self.request_load())

    async def action_pause(self) -> None:
        await self._set_enabled(False)

    async def action_resume(self) -> None:
        await self._set_enabled(True)

    async def _set_enabled(self, enabled: bool) -> None:
        chosen = self._selected()
        if not chosen:
            return
        try:
            changed = await self.services.subscriptions.set_enabled([s.id for s in chosen], enabled)
        except READ_ERRORS as exc:
            self.report_error(str(exc))
            return
        verb = "resumed" if enabled else "paused"
        unchanged = len(chosen) - changed
        extra = (
            f" ({unchanged} {'were' if unchanged != 1 else 'was'} {verb} already)"
            if (unchanged)
            else ""
        )
        self.notify(f"{verb} {_plural(changed, 'subscription')}{extra}")
        self.table.set_marks(())
        for s in chosen:
            self.records[str(s.id)] = replace(s, enabled=enabled)
        self._show_rows()
        self.request_load()

    def action_delete(self) -> None:
        chosen = self._selected()
        if not chosen:
            return
        listed = [
            f"{s.id}: {s.provider} {s.symbol} {s.interval} {s.mode}" for s in chosen[:_LISTED]
        ]
        if len(chosen) > _LISTED:
            listed.append(f"... and {len(chosen) - _LISTED} more")

        def confirmed(answer: Confirmed | None) -> None:
            if answer is not None:
                self.run_task("delete subscriptions", self._delete, [s.id for s in chosen])

        self.app.push_screen(
            ConfirmModal(
                f"Delete {_plural(len(chosen), 'subscription')}?",
                [*listed, "The bars already stored stay."],
            ),
            confirmed,
        )

    async def _delete(self, ids: list[int]) -> None:
        try:
            removed = await self.services.subscriptions.delete(ids)
        except READ_ERRORS as exc:
            self.report_error(str(exc))
            return
        self.notify(f"deleted {_plural(removed, 'subscription')}")
        self.table.set_marks(())
        self.request_load()

    def action_backfill(self) -> None:
        chosen = self._selected()
        if chosen:
            self.run_task("backfill", self._backfill, chosen)

    async def _backfill(self, chosen: list[SubscriptionRecord]) -> None:
        """The engine here runs the jobs at once; a daemon hears the request through the
        database (NOTIFY), as it hears every edit."""
        engine = self.services.engine
        if engine is not None:
            due = [s for s in chosen if s.mode == "historical" and s.enabled]
            started = [s for s in due if engine.backfill_now(s.id)]
        else:
            try:
                started = await self.services.subscriptions.request_backfill([s.id for s in chosen])
            except READ_ERRORS as exc:
                self.report_error(str(exc))
                return
        if not started:
            self.notify(
                "nothing to backfill: only enabled historical subscriptions run on "
                "demand (live ones fill their gaps themselves)",
                severity="warning",
            )
            return
        what = _plural(len(started), "subscription")
        skipped = len(chosen) - len(started)
        also = f"; {skipped} skipped (live or paused)" if skipped else ""
        view = self.services.view
        if engine is not None:
            self.notify(f"backfill started for {what}{also}")
        elif view.running and view.owner is not None:
            self.notify(f"asked the engine ({view.owner.label}) to backfill {what}{also}")
        else:
            self.notify(
                f"no engine runs now: {what} will backfill when one starts{also}",
                severity="warning",
            )

    async def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        record = self.records.get(self.table.cursor_key or "")
        if record is not None:
            await open_chart(self, record.provider, record.symbol)


MODE = Mode(
    "subscriptions",
    "Subscriptions",
    5,
    SubscriptionsScreen,
    "what is collected: add, pause, resume, delete, backfill",
    short="Subs",
)

command("subscription: add", "Subscribe symbols of a provider", "add", mode="subscriptions")
command(
    "subscription: pause",
    "Pause the marked (or selected) subscriptions",
    "pause",
    mode="subscriptions",
    on_row=True,
)
command(
    "subscription: resume",
    "Resume the marked (or selected) subscriptions",
    "resume",
    mode="subscriptions",
    on_row=True,
)
command(
    "subscription: delete",
    "Delete the marked (or selected) subscriptions (asks first)",
    "delete",
    mode="subscriptions",
    on_row=True,
)
command(
    "subscription: backfill now",
    "Run the marked (or selected) historical jobs now",
    "backfill",
    mode="subscriptions",
    on_row=True,
)
command("subscription: filter", "Filter the subscriptions shown", "filter", mode="subscriptions")
