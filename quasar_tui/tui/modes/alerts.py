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
from quasar_tui.tui.widgets.vim import VimDataTable

REFRESH_SECONDS = 2.0
HISTORY_SHOWN = 200
_RULE_COLUMNS = ("Id", "Kind", "Watches", "Condition", "Cooldown", "Delivery", "State", "Last")
_HISTORY_COLUMNS = ("Fired (UTC)", "Rule", "Series", "Alert", "Delivery")


def _delivery(entry: HistoryEntry) -> Text:
    failed = entry.failed
    if not failed:
        return Text("ok", style="green")
    last = {d["channel"]: d for d in entry.deliveries}
    words = "; ".join(f"{c} FAILED: {printable(last[c]['detail'] or '?')}" for c in failed)
    return Text(words, style="bold red")


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
        yield VimDataTable(id="alert-rules", zebra_stripes=True)
        yield Static("Alerts fired", classes="section-title")
        yield VimDataTable(id="alert-history", zebra_stripes=True)
        yield self.status_line()

    @property
    def store(self) -> AlertStore:
        return AlertStore(self.services.db, self.services.providers.keyring)

    def on_mount(self) -> None:
        self.query_one("#alert-rules", VimDataTable).add_columns(*_RULE_COLUMNS)
        self.query_one("#alert-history", VimDataTable).add_columns(*_HISTORY_COLUMNS)
        self.query_one("#alert-rules", VimDataTable).focus()
        self.set_interval(REFRESH_SECONDS, self.action_reload)
        self.action_reload()

    def on_screen_resume(self) -> None:
        self.quasar.alerts.mark_read()
        self.action_reload()

    @work(exclusive=True, group="alerts-reload")
    async def action_reload(self) -> None:
        store = self.store
        self.rules = await store.rules()
        history = await store.history(failed_only=self.failed_only, limit=HISTORY_SHOWN)
        self._show_rules()
        self._show_history(history)
        failed = sum(1 for e in history if e.failed)
        which = "with a failed delivery" if self.failed_only else "fired"
        self.show_status(
            f"{len(self.rules)} rules, {sum(r.enabled for r in self.rules)} active; "
            f"{len(history)} alerts {which} shown, {failed} with a failed delivery"
        )

    def _show_rules(self) -> None:
        table = self.query_one("#alert-rules", VimDataTable)
        row = table.cursor_row
        table.clear()
        for r in self.rules:
            delivery = ", ".join(r.channels)
            state = Text("active", style="green") if r.enabled else Text("paused", style="dim")
            last = f"{r.last_fired:%Y-%m-%d %H:%M:%S}" if r.last_fired else "-"
            table.add_row(
                str(r.id),
                r.kind,
                printable(r.target or "all"),
                printable(r.condition),
                f"{r.cooldown_s} s",
                delivery,
                state,
                last,
                key=str(r.id),
            )
        if self.rules:
            table.move_cursor(row=min(row, len(self.rules) - 1))

    def _show_history(self, history: list[HistoryEntry]) -> None:
        table = self.query_one("#alert-history", VimDataTable)
        table.clear()
        for e in history:
            table.add_row(
                f"{e.fired_at:%Y-%m-%d %H:%M:%S}",
                str(e.rule_id) if e.rule_id is not None else "(removed)",
                printable(e.key),
                printable(e.message),
                _delivery(e),
                key=str(e.id),
            )

    async def action_toggle_rule(self) -> None:
        table = self.query_one("#alert-rules", VimDataTable)
        if not self.rules or table.cursor_row >= len(self.rules):
            return
        rule = self.rules[table.cursor_row]
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
