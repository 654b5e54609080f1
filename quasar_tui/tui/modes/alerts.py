"""Alerts mode: the rules the engine evaluates, and what fired with how each delivery went
(failed deliveries stand out, with their reason). Rules are added with `quasar alert add`."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from quasar_tui.core.text import printable
from quasar_tui.registry.alerts import AlertRule, AlertStore, HistoryEntry
from quasar_tui.tui.modes.base import Mode, ModeScreen
from quasar_tui.tui.widgets.fitted_table import FittedTable

REFRESH_SECONDS = 2.0
HISTORY_SHOWN = 200
_RULE_COLUMNS = ("Id", "Kind", "Watches", "Condition", "Cooldown", "Delivery", "State", "Last")
_HISTORY_COLUMNS = ("Fired (UTC)", "Rule", "Series", "Alert", "Delivery")
# On a narrow terminal these go first (the first first): what a rule watches, its condition
# and whether it is active stay; of an alert, when, what and how its delivery went.
_RULE_SPARE = ("Kind", "Cooldown", "Delivery", "Last")
_HISTORY_SPARE = ("Rule", "Series")


def _delivery(entry: HistoryEntry) -> Text:
    failed = entry.failed_for_good
    if failed:
        last = {d["channel"]: d for d in entry.deliveries}
        words = "; ".join(f"{c} FAILED: {printable(last[c]['detail'] or '?')}" for c in failed)
        return Text(words, style="bold red")
    if entry.pending:
        return Text("pending: " + ", ".join(entry.pending), style="yellow")
    return Text("ok", style="green")


def _rule_cells(r: AlertRule) -> tuple[object, ...]:
    return (
        str(r.id),
        r.kind,
        printable(r.target or "all"),
        printable(r.condition),
        f"{r.cooldown_s} s",
        ", ".join(r.channels),
        Text("active", style="green") if r.enabled else Text("paused", style="dim"),
        f"{r.last_fired:%Y-%m-%d %H:%M:%S}" if r.last_fired else "-",
    )


def _history_cells(e: HistoryEntry) -> tuple[object, ...]:
    return (
        f"{e.fired_at:%Y-%m-%d %H:%M:%S}",
        str(e.rule_id) if e.rule_id is not None else "(removed)",
        printable(e.key),
        printable(e.message),
        _delivery(e),
    )


class AlertsScreen(ModeScreen):
    DEFAULT_CSS = """
    AlertsScreen #alert-rules { height: 1fr; }
    AlertsScreen #alert-history { height: 2fr; }
    """
    MODE_TITLE = "Alerts"
    HELP = (
        "Alert rules and what they fired, newest first. Alerts also pop up, ring the terminal "
        "bell and count in the header while you are elsewhere. p pauses or resumes the rule "
        "under the cursor, f shows only alerts whose webhook or command failed, r reloads. "
        "Add rules with `quasar alert add` (see `quasar alert add --help`)."
    )
    BINDINGS = [
        Binding("p", "toggle_rule", "Pause/resume", id="alerts.toggle"),
        Binding("f", "failed_only", "Failed only", id="alerts.failed"),
        Binding("r", "reload", "Reload", id="alerts.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.failed_only = False
        self.rules: list[AlertRule] = []

    def compose_body(self) -> ComposeResult:
        yield Static("Rules", classes="section-title")
        yield FittedTable(
            _RULE_COLUMNS, drop_first=_RULE_SPARE, id="alert-rules", zebra_stripes=True
        )
        yield Static("Alerts fired", classes="section-title")
        yield FittedTable(
            _HISTORY_COLUMNS, drop_first=_HISTORY_SPARE, id="alert-history", zebra_stripes=True
        )
        yield self.status_line()

    @property
    def store(self) -> AlertStore:
        return AlertStore(self.services.db, self.services.providers.keyring)

    def on_mount(self) -> None:
        self.rules_table.focus()
        self.set_interval(REFRESH_SECONDS, self.action_reload)
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.quasar.alerts.mark_read()
        self.action_reload()

    @property
    def rules_table(self) -> FittedTable:
        return self.query_one("#alert-rules", FittedTable)

    @work(exclusive=True, group="alerts-reload")
    async def action_reload(self) -> None:
        store = self.store
        self.rules = await store.rules()
        history = await store.history(failed_only=self.failed_only, limit=HISTORY_SHOWN)
        self._show_rules()
        self._show_history(history)
        failed = sum(1 for e in history if e.failed_for_good)
        which = "with a failed delivery" if self.failed_only else "fired"
        self.show_status(
            f"{len(self.rules)} rules, {sum(r.enabled for r in self.rules)} active; "
            f"{len(history)} alerts {which} shown, {failed} with a failed delivery"
        )

    def _show_rules(self) -> None:
        table = self.rules_table
        keep, row = table.cursor_key, table.cursor_row
        table.show_rows([(str(r.id), _rule_cells(r)) for r in self.rules])
        if self.rules and not table.move_to_key(keep):
            table.move_cursor(row=min(row, len(self.rules) - 1))

    def _show_history(self, history: list[HistoryEntry]) -> None:
        self.query_one("#alert-history", FittedTable).show_rows(
            [(str(e.id), _history_cells(e)) for e in history]
        )

    async def action_toggle_rule(self) -> None:
        key = self.rules_table.cursor_key
        rule = next((r for r in self.rules if str(r.id) == key), None)
        if rule is None:
            return
        await self.store.set_enabled(rule.id, not rule.enabled)
        word = "resumed" if not rule.enabled else "paused"
        self.notify(f"alert rule {rule.id} {word}", timeout=3)
        self.action_reload()

    def action_failed_only(self) -> None:
        self.failed_only = not self.failed_only
        self.action_reload()


MODE = Mode(
    "alerts", "Alerts", 10, AlertsScreen, "alert rules, what fired, failed deliveries", short="Alrt"
)
