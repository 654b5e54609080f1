"""What a user reads on an 80x24 terminal and on a wide one (issue 17): the tables keep the
columns a user acts on, with their titles whole, a click on a title sorts, and the status line
keeps its hint."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from registry_rows import add_provider
from registry_ui import open_mode
from rich.text import Text
from test_mapping_mode import mapped_pairs, pick_beta
from test_quality_mode import a_series_with_a_hole_and_a_bad_bar
from textual.app import App
from textual.widgets import Input
from tui_helpers import started, wait_for

from quasar_tui.engine.lock import EngineLock, EngineOwner
from quasar_tui.engine.progress import BackfillProgress
from quasar_tui.engine.publisher import Publisher
from quasar_tui.registry.alerts import AlertStore, Delivery, FiredEvent, NewRule
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk.models import RateBudget
from quasar_tui.store.database import Database
from quasar_tui.tui.modes.alerts import AlertsScreen
from quasar_tui.tui.modes.assets import AssetsScreen
from quasar_tui.tui.modes.mappings import MappingsScreen
from quasar_tui.tui.modes.providers import ProvidersScreen
from quasar_tui.tui.modes.quality import QualityScreen
from quasar_tui.tui.modes.subscriptions import SubscriptionsScreen
from quasar_tui.tui.widgets.fitted_table import FittedTable

SIZES = [(80, 24), (140, 45)]


def screen_lines(app: App[object]) -> list[str]:
    """The terminal's lines as the user sees them."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def laid_out(pilot, table: FittedTable) -> None:
    """The table has fitted its columns to its width: they fit, but for the end of the last
    one (free text, which may be cut)."""

    def fits() -> bool:
        *columns, last = table.ordered_columns
        used = sum(c.get_render_width(table) for c in columns) + len(last.label.plain) + 2
        return table.size.width > 0 and used <= table.scrollable_content_region.width

    await wait_for(pilot, fits)
    await pilot.pause()


def table_line(app: App[object], table: FittedTable, row: int = -1) -> str:
    """The line of the table's titles (row -1) or of its `row`th row, as drawn."""
    return screen_lines(app)[table.content_region.y + 1 + row]


def status_text(app: App[object]) -> str:
    """The status line's text, over the lines it wraps to."""
    status = app.screen.query_one("#status")
    lines = screen_lines(app)[status.region.y : status.region.bottom]
    return " ".join(" ".join(lines).split())


async def click_title(pilot, table: FittedTable, title: str) -> None:
    """Click the column title `title` (the table's columns as they are now)."""
    x = 0
    for column in table.ordered_columns:
        if column.label.plain.split(" ")[0] == title:
            break
        x += column.get_render_width(table)
    else:
        raise AssertionError(f"no column {title}")
    await pilot.click(table, offset=(x + 1, 0))
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
async def test_quality_keeps_flags_and_worst_day_and_shows_the_holes(
    make_console, db: Database, size
) -> None:
    await a_series_with_a_hole_and_a_bad_bar(db)
    app = make_console(run_engine=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_mode(pilot, "9", QualityScreen)
        table = screen.series_table
        await wait_for(pilot, lambda: screen.loaded and table.row_count == 1)
        await laid_out(pilot, table)
        titles = table_line(app, table)
        for title in ("Series", "Interval", "Coverage", "Missing", "Flagged", "Worst day"):
            assert f" {title} " in titles, (title, titles)
        await wait_for(pilot, lambda: screen.detail_table.row_count == 1)
        await pilot.pause()
        shown = "\n".join(screen_lines(app))
        assert "1 ohlc" in shown and "2026-11-03" in shown  # the flags and the worst day
        assert "2026-11-02 03:00" in shown  # the hole, under the series


@pytest.mark.parametrize("size", SIZES)
async def test_providers_fit_their_columns_sort_on_a_click_and_keep_the_hint(
    make_console, db: Database, size
) -> None:
    for name, assets in (("BBB", ["B1", "B2"]), ("AAA", ["A1"]), ("CCC", ["C1", "C2", "C3"])):
        await add_provider(db, name, assets=assets)
    app = make_console(run_engine=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_mode(pilot, "2", ProvidersScreen)
        table = screen.table
        await wait_for(pilot, lambda: len(screen.records) == 3 and table.row_count == 3)
        await laid_out(pilot, table)
        titles = table_line(app, table)
        for title in ("Name", "Enabled", "Status", "Secrets", "Detail"):
            assert f" {title} " in titles, (title, titles)
        assert "⏎ shows the assets, m maps the symbols" in status_text(app)

        await click_title(pilot, table, "Name")
        await click_title(pilot, table, "Name")
        assert " Name ▼ " in table_line(app, table)
        assert [table_line(app, table, row).split()[0] for row in range(3)] == [
            "CCC",
            "BBB",
            "AAA",
        ]
        await pilot.press("g")
        assert screen.selected is not None and screen.selected.name == "CCC"


@pytest.mark.parametrize("size", SIZES)
async def test_the_mapped_view_fits_and_sorts_on_a_click(make_console, db, size) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=size) as pilot:
        await started(pilot)
        await mapped_pairs(db, app.services)
        screen = await open_mode(pilot, "4", MappingsScreen)
        await wait_for(pilot, lambda: screen.provider == "ALPHA" and len(screen.mapped) == 101)
        await pilot.press("v")
        table = screen.mapped_table
        await wait_for(pilot, lambda: table.row_count == 101)
        await laid_out(pilot, table)
        titles = table_line(app, table)
        for title in ("Common", "Symbol", "Active"):
            assert f" {title} " in titles, (title, titles)

        await click_title(pilot, table, "Common")
        assert table_line(app, table, 0).split()[0] == "AAPL"
        await click_title(pilot, table, "Common")
        assert " Common ▼ " in table_line(app, table)
        assert table_line(app, table, 0).split()[0] == "K099/USD"
        await pilot.press("g", "d")  # delete asks about the row on top, as sorted
        await wait_for(pilot, lambda: "K099/USD" in " ".join(screen_lines(app)))


async def test_the_subscriptions_status_keeps_its_hint_at_80_columns(make_console, db) -> None:
    await add_provider(db, "EXCH", intervals=["1d"], assets=["AAA", "BBB"])
    app = make_console(run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_mode(pilot, "5", SubscriptionsScreen)
        await app.services.subscriptions.add("EXCH", ["AAA", "BBB"], "1d", "historical")
        screen.request_load()
        await wait_for(pilot, lambda: len(screen.records) == 2)
        await pilot.pause()
        assert "keys act on the marked rows (or the highlighted one)" in status_text(app)


@pytest.mark.parametrize("size", [(80, 24), (60, 15)])
async def test_a_long_backfill_state_leaves_freshness_and_error_in_view(
    make_console, db: Database, size
) -> None:
    """A backfill's progress makes State wide; it is cut, not the columns after it."""
    await add_provider(db, "EOD", intervals=["1d"], assets=["AAPL"])
    [sub] = await SubscriptionStore(db).add("EOD", ["AAPL"], "1d", "historical")
    progress = BackfillProgress(
        sub.id, "EOD", "AAPL", "1d", 0.42, 1200, 300.0, 190.0, RateBudget(1000, 60.0, 940)
    )
    lock = EngineLock(db)  # an engine in another process, publishing its progress
    await lock.acquire()
    owner = EngineOwner("host", 1, "daemon", datetime.now(UTC), datetime.now(UTC))
    await Publisher(db, owner, lambda: {"backfills": [msgspec.to_builtins(progress)]}).heartbeat()
    app = make_console(run_engine=False)
    try:
        async with app.run_test(size=size) as pilot:
            screen = await open_mode(pilot, "5", SubscriptionsScreen)
            table = screen.table
            await wait_for(pilot, lambda: "42%" in table_line(app, table, 0))
            await laid_out(pilot, table)
            titles = table_line(app, table)
            for title in ("Symbol", "Interval", "State", "Freshness", "Error"):
                assert f" {title}" in titles, (title, titles)
            assert "backfill 42%" in table_line(app, table, 0)
    finally:
        await lock.release()


@pytest.mark.parametrize("size", SIZES)
async def test_alerts_keep_state_and_failed_deliveries_in_view_and_sort(
    make_console, db: Database, tmp_path, size
) -> None:
    store = AlertStore(db, Keyring.load_or_create(tmp_path))
    rules = [
        await store.add(
            NewRule(
                "above", f"SIMULATED:SIM/{coin}", level=100.0, webhook_url="http://127.0.0.1:9/x"
            )
        )
        for coin in ("BTC", "ETH")
    ]
    fired = FiredEvent(
        rules[0].id,
        "above",
        "SIMULATED:SIM/BTC",
        "SIMULATED:SIM/BTC crossed above 100 at 100.5 (re-arms 0.2 % back)",
        {"price": 100.5},
        datetime.now(UTC),
        (),
    )
    [event] = await store.record([fired], {})
    await store.record_delivery(event, Delivery("webhook", 1, False, "connection refused"))
    app = make_console(run_engine=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_mode(pilot, "0", AlertsScreen)
        table = screen.rules_table
        history = screen.query_one("#alert-history", FittedTable)
        await wait_for(pilot, lambda: table.row_count == 2 and history.row_count == 1)
        await laid_out(pilot, table)
        await laid_out(pilot, history)
        titles = table_line(app, table)
        for title in ("Id", "Watches", "Condition", "State"):
            assert f" {title} " in titles, (title, titles)
        assert "active" in table_line(app, table, 0)
        for title in ("Fired (UTC)", "Alert", "Delivery"):
            assert f" {title} " in table_line(app, history), title
        assert "webhook FAILED: conn" in table_line(app, history, 0)

        await click_title(pilot, table, "Id")
        await click_title(pilot, table, "Id")
        assert table_line(app, table, 0).split()[0] == str(rules[1].id)
        await pilot.press("g", "p")  # pauses the rule on top, as sorted
        await wait_for(pilot, lambda: "paused" in table_line(app, table, 0))
        assert [r.enabled for r in await store.rules()] == [True, False]


def cells_whole_but_the_last(table: FittedTable) -> None:
    """Every shown cell fits its column, but for the last column's (free text)."""
    columns = table.ordered_columns[:-1]
    for row in range(table.row_count):
        for column, cell in zip(columns, table.get_row_at(row), strict=False):
            text = cell.plain if isinstance(cell, Text) else str(cell)
            assert len(text) + 2 <= column.get_render_width(table), (column.label.plain, text)


async def test_unmapped_symbols_keep_their_proposal_whole_beside_the_pane(make_console, db) -> None:
    app = make_console(run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await mapped_pairs(db, app.services)
        screen = await open_mode(pilot, "4", MappingsScreen)
        await pick_beta(pilot, screen)
        table = screen.table
        await laid_out(pilot, table)
        titles = table_line(app, table)
        for title in ("Symbol", "Common", "Score", "Why"):
            assert f" {title} " in titles, (title, titles)
        cells_whole_but_the_last(table)
        await pilot.press("slash", *"NEWCOIN1", "enter")
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.pause()
        assert "NEWCOIN1 new" in table_line(app, table, 0)


@pytest.mark.parametrize(
    ("key", "screen_type", "opens"),
    [
        ("3", AssetsScreen, ()),
        ("4", MappingsScreen, ("slash",)),
        ("5", SubscriptionsScreen, ("slash",)),
    ],
)
async def test_search_and_filter_boxes_show_their_hint_whole_at_80_columns(
    make_console, db, key, screen_type, opens
) -> None:
    await add_provider(db, "EXCHANGE-FEED", intervals=["1d"], assets=["AAA"])
    app = make_console(run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_mode(pilot, key, screen_type)
        await pilot.press(*opens)
        box = screen.query_one(Input)
        await wait_for(pilot, lambda: box.region.width > 0)
        await pilot.pause()
        shown = " ".join(screen_lines(app))
        assert box.placeholder in shown, box.placeholder
        if key != "5":  # beside the provider picker, which keeps its label whole too
            await wait_for(pilot, lambda: "EXCHANGE-FEED (1 assets)" in " ".join(screen_lines(app)))
