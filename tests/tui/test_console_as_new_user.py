"""What a new user trips over in the console (issue 17): the Dashboard's late-trades row,
palette targets and keys, mouse, narrow terminals, keymap conflicts, toasts."""

from __future__ import annotations

from pathlib import Path
from time import monotonic

import pytest
from registry_rows import add_provider
from registry_ui import notices, open_mode, plain
from rich.text import Text
from textual.app import App, ComposeResult
from textual.command import CommandPalette
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets._footer import FooterKey, FooterLabel
from textual.widgets._toast import Toast
from tui_helpers import started, wait_for

from quasar_tui.core.clock import utc_now
from quasar_tui.tui.commands import commands, key_for
from quasar_tui.tui.livebook import LiveBook
from quasar_tui.tui.modals.confirm import ConfirmModal
from quasar_tui.tui.modes import MODES
from quasar_tui.tui.modes.subscriptions import COLUMNS as SUBSCRIPTION_COLUMNS
from quasar_tui.tui.modes.subscriptions import SubscriptionsScreen
from quasar_tui.tui.services import ConsoleOptions
from quasar_tui.tui.services.view import EngineView
from quasar_tui.tui.widgets.fitted_table import FittedTable
from quasar_tui.tui.widgets.footer import ModeFooter
from quasar_tui.tui.widgets.health import EnginePanel
from quasar_tui.tui.widgets.live_table import LiveTable
from quasar_tui.tui.widgets.marked_table import MarkedTable
from quasar_tui.tui.widgets.mode_bar import ModeBar


class _PanelApp(App[None]):
    """The Dashboard's engine panel alone: the console's own would be redrawn every second
    from whatever engine status it reads, racing the figures a test gives it."""

    def compose(self) -> ComposeResult:
        yield EnginePanel()


async def test_trades_left_to_history_are_no_alarm_but_lost_ones_are() -> None:
    view, book = EngineView(owner=None, attached=False), LiveBook()
    app = _PanelApp()
    async with app.run_test(size=(100, 12)) as pilot:
        panel = app.query_one(EnginePanel)

        def shown(counters: dict[str, int]) -> str:
            view.apply_stats({"live_counters": {"KRAKEN": counters}})
            panel.show(view, book, utc_now())
            return plain(panel)

        text = shown({"history_filled": 512})
        assert "512 trades before the session" in text
        assert "Late trades" not in text and "lost" not in text
        await pilot.pause()
        text = shown(
            {"history_filled": 512, "late_corrected": 3, "bars_corrected": 1, "late_dropped": 2}
        )
        assert "Late trades" in text
        assert "3 after their bar (1 bars rebuilt), 2 lost" in text


@pytest.mark.parametrize("width", [140, 80, 60])
async def test_the_mode_bar_names_every_mode_and_a_click_opens_one(make_console, width) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=(width, 24)) as pilot:
        await started(pilot)
        bar = app.screen.query_one(ModeBar)
        await wait_for(pilot, lambda: bar.size.width == width)  # laid out: drawn as the user sees
        text = bar.render().plain
        assert len(text) <= width
        for mode in MODES:
            assert f" {mode.key} " in text, (mode.name, text)
        live_at = text.index(" 6 ") + 1
        await pilot.click(ModeBar, offset=(live_at, 0))
        await wait_for(pilot, lambda: app.current_mode == "live")


async def test_a_keymap_entry_taking_another_bindings_key_warns(make_console) -> None:
    keymap = {"mode.chart": "1"}
    options = ConsoleOptions(animation=False, keymap=keymap, keymap_path=Path("keymap.toml"))
    app = make_console(run_engine=False, options=options)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot)
        assert any(
            "1 now runs mode.chart, so mode.dashboard (Dashboard) has no key" in n.message
            for n in app._notifications
        )
        bar = app.screen.query_one(ModeBar)
        await wait_for(pilot, lambda: bar.size.width == 120)
        text = bar.render().plain
        assert " · Dashboard " in text and " 1 Chart " in text
        await pilot.press("1")
        assert app.current_mode == "chart"


def plain_screen(app) -> str:
    return "\n".join(plain(s) for s in app.screen.query(Static))


def _cells_whole(table: MarkedTable) -> None:
    """Every shown cell fits its column (DataTable cuts what does not)."""
    for row in range(table.row_count):
        for column, cell in zip(table.ordered_columns, table.get_row_at(row), strict=True):
            text = cell.plain if isinstance(cell, Text) else str(cell)
            assert len(text) <= column.content_width, (column.label.plain, text)


@pytest.mark.parametrize("size", [(80, 24), (60, 15)])
async def test_subscriptions_keep_freshness_and_error_on_a_small_terminal(
    make_console, db, size
) -> None:
    await add_provider(db, "EXCH", intervals=["1d"], assets=["AAA", "BBB"])
    app = make_console(run_engine=False)
    async with app.run_test(size=size) as pilot:
        await started(pilot)
        await app.services.subscriptions.add("EXCH", ["AAA", "BBB"], "1d", "historical")
        screen = await open_mode(pilot, "5", SubscriptionsScreen)
        await wait_for(pilot, lambda: len(screen.records) == 2)
        await pilot.pause()
        table = screen.table
        shown = table.shown_columns
        assert {"Symbol", "Interval", "State", "Freshness", "Error"} <= set(shown)
        assert shown != SUBSCRIPTION_COLUMNS  # something had to go
        width = sum(c.get_render_width(table) for c in table.ordered_columns)
        assert width <= table.size.width
        _cells_whole(table)


async def _palette(pilot, text: str) -> None:
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
    await pilot.press(*text)
    options = pilot.app.screen.query_one(OptionList)
    await wait_for(pilot, lambda: text in str(options.get_option_at_index(0).prompt))
    await pilot.press("enter")


async def _two_subscriptions_and_live_quotes(app, pilot, db) -> SubscriptionsScreen:
    """AAA and BBB subscribed; the Subscriptions mode highlights AAA, the Live mode BBB."""
    await add_provider(db, "EXCH", intervals=["1d"], assets=["AAA", "BBB"])
    await started(pilot)
    await app.services.subscriptions.add("EXCH", ["AAA", "BBB"], "1d", "historical")
    screen = await open_mode(pilot, "5", SubscriptionsScreen)
    await wait_for(pilot, lambda: len(screen.records) == 2)
    for symbol in ("AAA", "BBB"):
        app.services.book.apply_tick("EXCH", symbol, utc_now(), 1.0, 1.0, None, None, monotonic())
    await pilot.press("6")
    live = app.screen.query_one(LiveTable)
    await wait_for(pilot, lambda: len(live.order) == 2)
    await pilot.press("j")
    assert live.cursor_key == ("EXCH", "BBB")
    return screen


async def test_a_palette_row_action_acts_on_the_row_in_view_not_another_modes(
    make_console, db
) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        subs = await _two_subscriptions_and_live_quotes(app, pilot, db)
        await _palette(pilot, "subscription: pause")
        await wait_for(pilot, lambda: not subs.records[subs.table.keys[1]].enabled)
        assert app.current_mode == "subscriptions"
        assert [(s.symbol, s.enabled) for s in subs.records.values()] == [
            ("AAA", True),
            ("BBB", False),
        ]
        await pilot.press("6")
        await _palette(pilot, "subscription: delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "BBB" in plain_screen(app) and "AAA" not in plain_screen(app)
        await pilot.press("n")


async def test_a_palette_row_action_with_no_row_in_view_asks_which(make_console, db) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        subs = await _two_subscriptions_and_live_quotes(app, pilot, db)
        await pilot.press("8")
        await _palette(pilot, "subscription: pause")
        await wait_for(pilot, lambda: any("which one?" in n for n in notices(app)))
        assert app.current_mode == "subscriptions"
        assert all(s.enabled for s in subs.records.values())
        assert "press p" in notices(app)[-1]


async def test_palette_entries_show_their_key_and_group_names(make_console) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot)
        by_name = {c.name: c for c in commands()}
        assert key_for(app, by_name["subscription: pause"]) == "p"
        assert key_for(app, by_name["mode: live"]) == "6"
        assert key_for(app, by_name["live: sort by next column"]) == "s"
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "view: theme" in titles and "view: screenshot" in titles
        assert all(": " in t for t in titles)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"subscription: pause")
        options = app.screen.query_one(OptionList)
        await wait_for(pilot, lambda: "pause" in str(options.get_option_at_index(0).prompt))
        shown = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any("subscription: pause  p" in s for s in shown), shown


@pytest.mark.parametrize("size", [(80, 24), (60, 15)])
async def test_toasts_leave_the_status_line_and_footer_readable(make_console, size) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=size, notifications=True) as pilot:
        await started(pilot)
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, SubscriptionsScreen))
        app.notify("a long message that a user must read while the status line stays " * 2)
        [toast] = await wait_for(pilot, lambda: list(app.screen.query(Toast)))
        await pilot.pause()
        status = app.screen.query_one("#status")
        assert toast.region.bottom <= status.region.y


async def test_the_dashboards_subscriptions_keep_freshness_at_80_columns(make_console, db) -> None:
    await add_provider(db, "EXCHANGE-WITH-A-LONG-NAME", intervals=["1d"], assets=["AAA"])
    app = make_console(run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await app.services.subscriptions.add(
            "EXCHANGE-WITH-A-LONG-NAME", ["AAA"], "1d", "historical"
        )
        table = app.screen.query_one("#freshness", FittedTable)
        await pilot.press("r")
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.pause()
        assert {"Symbol", "Interval", "Freshness", "State"} <= set(table.shown_columns)
        assert "Provider" not in table.shown_columns
        width = sum(c.get_render_width(table) for c in table.ordered_columns)
        assert width <= table.scrollable_content_region.width


@pytest.mark.parametrize("size", [(80, 24), (60, 15)])
async def test_the_footer_shows_only_keys_that_fit_whole(make_console, size) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=size) as pilot:
        await started(pilot)
        for key, mode in (("5", "subscriptions"), ("7", "chart"), ("1", "dashboard")):
            await pilot.press(key)
            await wait_for(pilot, lambda: app.current_mode == mode)  # noqa: B023
            footer = app.screen.query_one(ModeFooter)
            palette = next(k for k in footer.query(FooterKey) if k.has_class("-command-palette"))
            await wait_for(pilot, lambda: palette.region.width > 0)  # noqa: B023

            def visible() -> list[Widget]:
                return [c for c in footer.children if c.display and c is not palette]  # noqa: B023

            # The footer fits itself to the width once laid out (a refresh after the switch).
            await wait_for(
                pilot,
                lambda: all(c.region.right <= palette.region.x for c in visible()),  # noqa: B023
            )
            shown = visible()
            assert shown, key
            labels = [c for c in shown if isinstance(c, FooterLabel)]
            groups = [
                c for c in shown if c.has_class("binding-group") or type(c).__name__ == "KeyGroup"
            ]
            assert len(labels) == len(groups), key  # no group without its label


async def test_clicking_a_column_title_sorts_the_subscriptions(make_console, db) -> None:
    await add_provider(db, "EXCH", intervals=["1h", "1d"], assets=["AAA", "BBB", "CCC"])
    app = make_console(run_engine=False)
    async with app.run_test(size=(140, 30)) as pilot:
        await started(pilot)
        store = app.services.subscriptions
        await store.add("EXCH", ["BBB", "AAA"], "1d", "historical")
        await store.add("EXCH", ["CCC"], "1h", "historical")
        screen = await open_mode(pilot, "5", SubscriptionsScreen)
        await wait_for(pilot, lambda: len(screen.records) == 3)
        table = screen.table

        def symbols() -> list[str]:
            return [screen.records[k].symbol for k in table.keys]

        x = sum(c.get_render_width(table) for c in table.ordered_columns[:2]) + 1
        await pilot.click(MarkedTable, offset=(x, 0))  # the Symbol title
        assert symbols() == ["AAA", "BBB", "CCC"]
        assert "Symbol ▲" in [c.label.plain for c in table.ordered_columns]
        await pilot.click(MarkedTable, offset=(x, 0))
        assert symbols() == ["CCC", "BBB", "AAA"]
        await pilot.press("g", "p")  # the keys act on the row under the cursor, sorted or not
        await wait_for(pilot, lambda: not screen.records[table.keys[0]].enabled)
        assert [s.symbol for s in screen.records.values() if not s.enabled] == ["CCC"]
        assert symbols() == ["CCC", "BBB", "AAA"]  # a reload keeps the order


async def test_two_keymap_entries_on_one_key_warn_which_runs(make_console) -> None:
    keymap = {"mode.chart": "f2", "mode.log": "f2"}
    options = ConsoleOptions(animation=False, keymap=keymap, keymap_path=Path("keymap.toml"))
    app = make_console(run_engine=False, options=options)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot)
        [warning] = [n.message for n in app._notifications if "f2 is given to" in n.message]
        runs = warning.split("only ")[1].split(" runs")[0]
        await pilot.press("f2")
        assert f"mode.{app.current_mode}" == runs
