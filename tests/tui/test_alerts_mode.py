"""The console's side of alerts: an alert recorded by an engine (here or in a daemon) pops up
and counts as unread in the header; the Alerts mode lists rules and what fired, failed
deliveries with their reason, and pauses a rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tui_helpers import wait_for

from quasar_tui.registry.alerts import AlertStore, Delivery, NewRule
from quasar_tui.registry.secrets import Keyring
from quasar_tui.store.database import Database
from quasar_tui.tui.modes.alerts import AlertsScreen
from quasar_tui.tui.widgets.vim import VimDataTable


def cells(table: VimDataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_a_new_alert_pops_up_counts_as_unread_and_shows_in_the_alerts_mode(
    make_console, db: Database, tmp_path: Path
) -> None:
    store = AlertStore(db, Keyring.load_or_create(tmp_path))
    rule = await store.add(
        NewRule("above", "SIMULATED:SIM/BTC", level=100.0, webhook_url="http://127.0.0.1:9/x")
    )
    app = make_console(run_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        await wait_for(pilot, lambda: app.alerts._last_id is not None, "the first poll")
        fired = datetime.now(UTC)
        event = await store.record_event(
            rule.id,
            "above",
            "SIMULATED:SIM/BTC",
            "SIMULATED:SIM/BTC crossed above 100",
            {"price": 100.5},
            fired,
        )
        await store.record_delivery(event, Delivery("log", 1, True))
        await store.record_delivery(event, Delivery("webhook", 1, False, "connection refused"))

        await wait_for(pilot, lambda: "1 unread alert" in app.sub_title, "the unread count")
        toasts = [n.message for n in app._notifications]
        assert "SIMULATED:SIM/BTC crossed above 100" in toasts

        await pilot.press("9")
        await wait_for(pilot, lambda: app.current_mode == "alerts")
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        rules = screen.query_one("#alert-rules", VimDataTable)
        history = screen.query_one("#alert-history", VimDataTable)
        await wait_for(pilot, lambda: rules.row_count == 1 and history.row_count == 1)
        [row] = cells(rules)
        assert row[:3] == [str(rule.id), "above", "SIMULATED:SIM/BTC"]
        assert row[6] == "active"
        [shown] = cells(history)
        assert shown[3] == "SIMULATED:SIM/BTC crossed above 100"
        assert shown[4] == "webhook FAILED: connection refused"
        await wait_for(pilot, lambda: "unread" not in app.sub_title, "unread cleared")

        rules.focus()
        await pilot.press("p")
        await wait_for(pilot, lambda: cells(rules) and cells(rules)[0][6] == "paused")
        assert not (await store.get(rule.id)).enabled
