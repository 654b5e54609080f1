"""Live data in the console: simulated ticks in the Live table, charts of stored bars, and a
console attached to an engine another process (here: another Engine object) runs: its ticks,
its errors, backfill requests to it, and taking the engine over when it stops."""

from __future__ import annotations

import os
from pathlib import Path

from registry_ui import notices
from tui_helpers import wait_for

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.events import EngineError
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.bars import fetch_bars
from quasar_tui.store.database import Database
from quasar_tui.tui.demo import LIVE_INTERVAL, PROVIDER
from quasar_tui.tui.modes.chart import ChartScreen
from quasar_tui.tui.modes.dashboard import DashboardScreen
from quasar_tui.tui.modes.live import LiveScreen
from quasar_tui.tui.modes.subscriptions import SubscriptionsScreen
from quasar_tui.tui.widgets.candle_chart import CandleChart
from quasar_tui.tui.widgets.live_table import LiveTable
from quasar_tui.tui.widgets.vim import VimDataTable


async def test_simulated_ticks_fill_the_live_table_and_keys_sort_and_filter(
    make_console, seeded
) -> None:
    symbols = await seeded()
    app = make_console()
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        table = screen.query_one(LiveTable)
        await wait_for(pilot, lambda: len(table.order) == len(symbols))
        assert {symbol for _, symbol in table.order} == set(symbols)
        row = app.services.book.rows[(PROVIDER, "ACME")]
        await wait_for(pilot, lambda: row.ticks > 1)
        assert row.last is not None and row.volume > 0

        await pilot.press("s")
        assert table.sort_column == "symbol"
        assert [s for _, s in table.order] == sorted(symbols)
        await pilot.press("S")
        assert [s for _, s in table.order] == sorted(symbols, reverse=True)
        await pilot.press("slash", *"sim/", "enter")
        assert {s for _, s in table.order} == {s for s in symbols if s.startswith("SIM/")}
        assert table.has_focus
        await pilot.press("escape")
        assert len(table.order) == len(symbols)
        await pilot.press("g", "enter")  # Enter charts the symbol under the cursor
        await wait_for(pilot, lambda: app.current_mode == "chart")
        chart = app.screen
        assert isinstance(chart, ChartScreen) and chart.current is not None
        assert chart.current.symbol == table.order[0][1]


async def test_a_chart_opens_for_a_stored_series(make_console, seeded, db: Database) -> None:
    await seeded(history=[("ACME", "1d")])
    subscriptions = SubscriptionStore(db)
    daily = await subscriptions.find(PROVIDER, "ACME", "1d", "historical")
    live = await subscriptions.find(PROVIDER, "ACME", LIVE_INTERVAL, "live")
    assert daily is not None and live is not None
    # ACME's live series stays listed but paused, so it never gets a bar however long the
    # 365-day run takes: the Chart must skip it for the first series that has bars.
    await subscriptions.set_enabled([live.id], False)
    app = make_console()
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "dashboard")
        await wait_for(pilot, lambda: _has_run(subscriptions, daily.id), "the 365-day run")
        stored = len(await fetch_bars(db, "historical_data", PROVIDER, "ACME", "1d", limit=1000))
        assert stored > 240
        await pilot.press("7")  # shows the first series with bars: ACME's 1min live has none
        screen = app.screen
        assert isinstance(screen, ChartScreen)
        await wait_for(pilot, lambda: screen.current is not None)
        assert screen.current.symbol == "ACME" and screen.interval is Interval.D1
        chart = screen.query_one(CandleChart)
        await wait_for(pilot, lambda: len(chart.bars) == 120, "the latest 120 bars shown")
        info = str(screen.query_one("#chart-info").render())
        assert "ACME (SIMULATED) 1d  120 bars" in info
        await wait_for(pilot, lambda: "█" in chart.render().plain, "candles drawn")
        await pilot.press("minus")
        await wait_for(pilot, lambda: len(chart.bars) == 240, "zoomed out to 240 bars")
        await pilot.press("h")
        await wait_for(pilot, lambda: len(chart.bars) == min(240, stored - 120), "panned back")
        # Every interval daily bars can give: weeks and months derived from them.
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: screen.interval is Interval.W1 and len(chart.bars) > 30)
        assert "1w derived from 1d" in str(screen.query_one("#chart-info").render())
        await pilot.press("right_square_bracket", "right_square_bracket")
        await wait_for(pilot, lambda: screen.interval is Interval.D1)

        await pilot.press("1")  # Enter on a dashboard subscription charts its symbol
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await wait_for(pilot, lambda: (PROVIDER, "GLOBEX") in dashboard.fresh_keys)
        freshness = dashboard.query_one("#freshness", VimDataTable)
        freshness.focus()
        freshness.move_cursor(row=dashboard.fresh_keys.index((PROVIDER, "GLOBEX")))
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                app.current_mode == "chart"
                and screen.current is not None
                and screen.current.symbol == "GLOBEX"
            ),
        )


RUNS = "SELECT count(*) FROM collection_runs WHERE subscription_id = $1 AND finished_at IS NOT NULL"


async def _runs_reach(db: Database, sub_id: int, times: int) -> bool:
    return await db.fetchval(RUNS, sub_id) >= times


async def _has_run(subscriptions: SubscriptionStore, sub_id: int) -> bool:
    return (await subscriptions.get(sub_id)).last_run_at is not None


async def test_attached_console_shows_the_daemon_and_works_as_its_remote_control(
    make_console, seeded, db: Database, tmp_path: Path
) -> None:
    await seeded(history=[("ACME", "1d")])
    daily = await SubscriptionStore(db).find(PROVIDER, "ACME", "1d", "historical")
    assert daily is not None
    daemon = Engine.create(db, data_dir=tmp_path, mode="daemon")
    await daemon.start()
    try:
        app = make_console()
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: app.current_mode == "dashboard")
            assert app.services.attached and app.services.engine is None
            owner = daemon.owner
            assert owner is not None
            await wait_for(
                pilot, lambda: app.sub_title == (f"attached to daemon {owner.host}:{owner.pid}")
            )
            await pilot.press("6")
            table = app.screen.query_one(LiveTable)
            await wait_for(pilot, lambda: (PROVIDER, "ACME") in table.order)
            row = app.services.book.rows[(PROVIDER, "ACME")]
            assert row.last is not None

            await wait_for(pilot, lambda: _runs_reach(db, daily.id, 1), "the daemon's first run")
            await pilot.press("5")
            screen = app.screen
            assert isinstance(screen, SubscriptionsScreen)
            await wait_for(pilot, lambda: str(daily.id) in screen.table.keys)
            screen.table.move_cursor(row=screen.table.keys.index(str(daily.id)))
            await pilot.press("b")
            await wait_for(
                pilot,
                lambda: any(
                    f"asked the engine ({owner.label}) to backfill 1 subscription" in n
                    for n in notices(app)
                ),
            )
            await wait_for(pilot, lambda: _runs_reach(db, daily.id, 2), "the run 'b' asked for")

            daemon.bus.publish(EngineError("live:KRAKEN", "connection refused; retrying"))
            await wait_for(pilot, lambda: "connection refused; retrying" in notices(app))
            assert any(e.source == "live:KRAKEN" and e.level == "error" for e in app.services.log)
    finally:
        await daemon.stop()


async def test_console_takes_the_engine_over_when_the_daemon_stops(
    make_console, seeded, db: Database, tmp_path: Path
) -> None:
    await seeded()
    daemon = Engine.create(db, data_dir=tmp_path, mode="daemon")
    await daemon.start()
    owner = daemon.owner
    assert owner is not None
    app = make_console()
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: app.sub_title.startswith("attached to daemon"))
            await daemon.stop()
            await wait_for(pilot, lambda: app.services.engine is not None)
            await wait_for(
                pilot,
                lambda: (
                    app.sub_title
                    == (
                        f"engine runs here (pid {os.getpid()}; took over from daemon "
                        f"{owner.host}:{owner.pid})"
                    )
                ),
            )
            assert app.services.engine.running
            assert any("this console runs the engine now" in e.message for e in app.services.log)
            await wait_for(pilot, lambda: any("runs the engine now" in n for n in notices(app)))
            await pilot.press("6")  # ticks now come from the engine in this console
            ticks = app.services.book.total_ticks
            await wait_for(pilot, lambda: app.services.book.total_ticks > ticks)
    finally:
        await daemon.stop()
