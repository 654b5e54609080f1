"""The console's data-quality views: the Quality mode (coverage, flags, holes; Enter charts
there, b backfills, f lists flagged bars), backfill progress in Subscriptions and the
Dashboard, and freshness by the engine's calendar-aware rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from registry_rows import add_provider
from registry_ui import notices, open_mode, until_screen
from test_read import random_bars, store
from textual.widgets import DataTable
from tui_helpers import started, wait_for

from quasar_tui.engine.lock import EngineLock, EngineOwner
from quasar_tui.engine.progress import BackfillProgress
from quasar_tui.engine.publisher import Publisher
from quasar_tui.quality.calendars import calendar
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk.models import RateBudget, SymbolInfo
from quasar_tui.store.database import Database
from quasar_tui.tui.modes.chart import ChartScreen
from quasar_tui.tui.modes.dashboard import DashboardScreen
from quasar_tui.tui.modes.quality import QualityScreen
from quasar_tui.tui.modes.subscriptions import SubscriptionsScreen
from quasar_tui.tui.widgets.health import Freshness, freshness

START = datetime(2026, 11, 2, tzinfo=UTC)
SIZE = (160, 48)


def cells(table: DataTable, row: int) -> list[str]:
    return [str(getattr(c, "plain", c)) for c in table.get_row_at(row)]


def state(table: DataTable) -> str:
    """The first row's State cell, wherever the table puts that column (a narrow one moves
    or drops columns)."""
    labels = [c.label.plain for c in table.ordered_columns]
    return cells(table, 0)[labels.index("State")]


async def a_series_with_a_hole_and_a_bad_bar(db: Database) -> list[tuple]:
    await add_provider(
        db, "KRAKEN", assets=[SymbolInfo("XBT/USD", exchange="KRAKEN", asset_class="crypto")]
    )
    await SubscriptionStore(db).add("KRAKEN", ["XBT/USD"], "1h", "historical")
    hours = [list(b) for b in random_bars(START, 48, timedelta(hours=1), 4)]
    hours[30][3] = hours[30][2] + 5  # low above high
    kept = [tuple(b) for i, b in enumerate(hours) if i not in (3, 4)]  # two hours missing
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1h", kept)
    return kept


async def test_quality_mode_shows_coverage_flags_and_holes_and_acts_on_them(
    make_console, db: Database
) -> None:
    await a_series_with_a_hole_and_a_bad_bar(db)
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "9", QualityScreen)
        await wait_for(pilot, lambda: screen.loaded and screen.series_table.row_count == 1)
        row = cells(screen.series_table, 0)
        assert row[:4] == ["XBT/USD", "KRAKEN", "1h", "24/7"]
        assert row[4].endswith("95.8%") and row[5:8] == ["46", "2", "1 ohlc"]
        assert row[8].startswith("2026-11-03")
        detail = screen.detail_table
        await wait_for(pilot, lambda: detail.row_count == 1)
        assert cells(detail, 0)[:4] == ["2026-11-02 03:00", "2026-11-02 04:00", "2", "open"]

        # b on the hole: recorded for the engine, whose job is asked to run.
        detail.focus()
        await pilot.press("b")
        await wait_for(pilot, lambda: "asked the engine to fetch 1 hole" in notices(app))
        gap = await db.fetchrow("SELECT start_ts, end_ts, reason FROM gaps")
        assert tuple(gap) == (START + timedelta(hours=3), START + timedelta(hours=5), "asked")

        # Enter on the hole: the Chart with the cursor on the last bar before it.
        await pilot.press("enter")
        chart = await until_screen(pilot, ChartScreen)
        await wait_for(pilot, lambda: chart.cursor is not None)
        assert chart.bars[chart.cursor].ts == START + timedelta(hours=2)

        # f lists the flagged bars; Enter charts the flagged one.
        await pilot.press("9")
        await until_screen(pilot, QualityScreen)
        await pilot.press("f")
        await wait_for(pilot, lambda: screen.showing_flags and detail.row_count == 1)
        assert cells(detail, 0) == ["2026-11-03 06:00", "ohlc", "0"]
        detail.focus()
        await pilot.press("enter")
        chart = await until_screen(pilot, ChartScreen)
        await wait_for(
            pilot,
            lambda: (
                chart.cursor is not None
                and chart.bars[chart.cursor].ts == START + timedelta(hours=30)
            ),
        )


async def test_backfill_progress_shows_in_subscriptions_and_the_dashboard(
    make_console, db: Database
) -> None:
    await add_provider(db, "EOD", assets=[SymbolInfo("AAPL", exchange="US", asset_class="stock")])
    (sub_id,) = [s.id for s in await SubscriptionStore(db).add("EOD", ["AAPL"], "1d", "historical")]
    progress = BackfillProgress(
        sub_id, "EOD", "AAPL", "1d", 0.42, 1200, 300.0, 190.0, RateBudget(1000, 60.0, 940)
    )
    published = {"backfills": [msgspec.to_builtins(progress)]}
    lock = EngineLock(db)  # an engine in another process, publishing its stats
    await lock.acquire()
    owner = EngineOwner("host", 1, "daemon", datetime.now(UTC), datetime.now(UTC))
    publisher = Publisher(db, owner, lambda: published)
    await publisher.heartbeat()
    app = make_console(run_engine=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await started(pilot)
            dashboard = app.screen
            assert isinstance(dashboard, DashboardScreen)
            table = dashboard.query_one("#freshness", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1 and "42%" in state(table))
            shown = state(table)
            assert shown == "backfill 42% 300 rows/s ETA 3m10s rate 940/1000 per 60s"

            screen = await open_mode(pilot, "5", SubscriptionsScreen)
            await wait_for(pilot, lambda: screen.table.row_count == 1)
            await wait_for(pilot, lambda: state(screen.table).startswith("backfill 42%"))
            assert "ETA 3m10s" in state(screen.table)
            # The series' calendar is its exchange's: the console judges freshness by it.
            assert screen.calendars[("EOD", "AAPL", "1d")].name == "XNYS"

            published = {"backfills": []}  # the backfill ended
            await publisher.heartbeat()
            await wait_for(pilot, lambda: not state(screen.table).startswith("backfill"))
    finally:
        await lock.release()


def test_the_console_judges_freshness_by_the_engines_rule() -> None:
    nyse = calendar("XNYS")
    wednesday = datetime(2026, 11, 25, tzinfo=UTC)
    # Thanksgiving and Friday's early close: the market is closed, nothing is late.
    at = datetime(2026, 11, 27, 17, tzinfo=UTC)
    assert freshness("1d", True, wednesday, at, nyse) == Freshness("fresh", "ok")
    later = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert freshness("1d", True, wednesday, later, nyse) == Freshness("2d behind", "stale")
    assert freshness("1min", True, None, at) == Freshness("no bars yet", "late")
    assert freshness("1min", False, wednesday, at) == Freshness("paused", "idle")


async def test_a_series_with_no_bars_yet_is_not_counted_complete(make_console, db: Database):
    await a_series_with_a_hole_and_a_bad_bar(db)
    await add_provider(db, "EOD", intervals=["1d"], assets=["AAPL"])
    await SubscriptionStore(db).add("EOD", ["AAPL"], "1d", "historical")  # nothing stored yet
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "9", QualityScreen)
        table = screen.series_table
        await wait_for(pilot, lambda: screen.loaded and table.row_count == 2)
        rows = {cells(table, i)[0]: cells(table, i) for i in range(2)}
        assert rows["AAPL"][4] == "no bars yet"
        status = str(screen.query_one("#status").render())
        assert status.startswith("2 series, 0 complete and clean, 1 with no bars yet · 1 holes")
