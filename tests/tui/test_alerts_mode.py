"""The console's side of alerts: an alert recorded by an engine (here or in a daemon) pops up
and counts as unread in the header; the Alerts mode lists rules and what fired, failed
deliveries with their reason, and pauses a rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from registry_ui import SIZE, open_mode, until_screen
from test_read import mapped, random_bars
from test_read import store as store_bars
from textual.widgets import Input
from tui_helpers import wait_for

from quasar_tui.core.numbers import plain
from quasar_tui.registry.alerts import AlertStore, Delivery, FiredEvent, NewRule
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.database import Database
from quasar_tui.tui.modals.price_alert import PriceAlertModal
from quasar_tui.tui.modes.alerts import AlertsScreen
from quasar_tui.tui.modes.chart import ChartScreen
from quasar_tui.tui.widgets.live_table import LiveTable
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
        crossed = "SIMULATED:SIM/BTC crossed above 100"
        fired_event = FiredEvent(
            rule.id, "above", "SIMULATED:SIM/BTC", crossed, {"price": 100.5}, fired, ()
        )
        [event] = await store.record([fired_event], {})
        await store.record_delivery(event, Delivery("log", 1, True))
        await store.record_delivery(event, Delivery("webhook", 1, False, "connection refused"))

        await wait_for(pilot, lambda: "1 unread alert" in app.sub_title, "the unread count")
        toasts = [n.message for n in app._notifications]
        assert "SIMULATED:SIM/BTC crossed above 100" in toasts

        await pilot.press("0")
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


async def test_alert_at_this_price_from_the_live_table(
    make_console, db: Database, tmp_path: Path
) -> None:
    store = AlertStore(db, Keyring.load_or_create(tmp_path))
    app = make_console(run_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        await pilot.press("A")  # nowhere to point at on the Dashboard
        await wait_for(pilot, lambda: any("cursor" in n.message for n in app._notifications))

        now = datetime.now(UTC)
        app.services.book.apply_tick("SIMULATED", "SIM/BTC", now, 101.25, 1.0, None, None, 0.0)
        await pilot.press("6")
        await wait_for(pilot, lambda: app.current_mode == "live")
        await wait_for(pilot, lambda: app.screen.query_one(LiveTable).cursor_key is not None)
        await pilot.press("A")
        await wait_for(pilot, lambda: isinstance(app.screen, PriceAlertModal))
        level = app.screen.query_one("#level-input", Input)
        assert level.value == "101.25"
        level.value = "-3"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "above 0" in str(app.screen.query(".field-error").first().render())
        )
        level.value = "99.5"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, PriceAlertModal))

    [rule] = await store.rules()
    assert (rule.kind, rule.target, rule.level) == ("below", "SIMULATED:SIM/BTC", 99.5)


async def test_alert_at_the_chart_cursors_price(make_console, db: Database, tmp_path: Path) -> None:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"))
    await SubscriptionStore(db).add("KRAKEN", ["XBT/USD"], "1min", "historical")
    start = datetime(2026, 3, 2, tzinfo=UTC)
    await store_bars(
        db,
        "historical_data",
        "KRAKEN",
        "XBT/USD",
        "1min",
        random_bars(start, 60, timedelta(minutes=1), 11),
    )
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "7", ChartScreen)
        await wait_for(pilot, lambda: screen.bars)
        await pilot.press("e", "left", "left")  # a cursor on a bar before the newest
        assert screen.cursor == len(screen.bars) - 2
        bar, newest = screen.bars[-2], screen.bars[-1]
        await pilot.press("A")
        form = await until_screen(pilot, PriceAlertModal)
        assert form.query_one("#level-input", Input).value == plain(bar.close)
        await pilot.press("enter")
        await until_screen(pilot, ChartScreen)

    [rule] = await AlertStore(db, Keyring.load_or_create(tmp_path)).rules()
    kind = "above" if bar.close >= newest.close else "below"
    assert (rule.kind, rule.target, rule.level) == (kind, "KRAKEN:XBT/USD", float(plain(bar.close)))
