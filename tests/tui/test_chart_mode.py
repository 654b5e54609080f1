"""Chart mode read through the read layer: every interval reachable with [ and ] (derived ones
marked), a cursor with the OHLCV of its bar, moving averages, UTC or local time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from registry_ui import SIZE, field_error, open_mode, until_screen
from test_read import mapped, random_bars, store
from textual.widgets import Input
from tui_helpers import wait_for

from quasar_tui.core.indicators import bollinger, ema, sma, vwap
from quasar_tui.core.intervals import Interval
from quasar_tui.core.numbers import plain
from quasar_tui.engine.events import TradesRead
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk.models import Tick
from quasar_tui.store.read import ReadBar, Reader
from quasar_tui.tui.modals.periods import PeriodsModal
from quasar_tui.tui.modes.chart import ChartScreen
from quasar_tui.tui.widgets.candle_chart import VOLUME_MIN_HEIGHT, CandleChart, render_candles

START = datetime(2026, 3, 2, tzinfo=UTC)


def text(screen: ChartScreen, widget_id: str) -> str:
    return str(screen.query_one(widget_id).render())


def test_moving_averages() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sma(values, 3) == [None, None, 2.0, 3.0, 4.0]
    assert ema(values, 3) == [None, None, 2.0, 3.0, 4.0]  # a straight line stays on it
    assert ema([2.0, 2.0, 8.0], 2) == [None, 2.0, 6.0]
    assert sma(values, 9) == [None] * 5 and ema(values, 9) == [None] * 5
    upper, lower = bollinger([1.0, 3.0, 1.0, 3.0], 2, width=2.0)
    assert upper == [None, 4.0, 4.0, 4.0] and lower == [None, 0.0, 0.0, 0.0]
    assert vwap([10.0, 20.0, 40.0], [0.0, 1.0, 3.0]) == [None, 20.0, 35.0]


@pytest.mark.parametrize("height", [6, 12, VOLUME_MIN_HEIGHT - 1, VOLUME_MIN_HEIGHT])
def test_a_short_chart_draws_its_candles_without_the_volume_pane(height: int) -> None:
    """A 60x15 terminal leaves the chart a few lines: it must draw, not crash the console."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    bars = [
        ReadBar(start + timedelta(minutes=i), 10 + i, 12 + i, 9 + i, 11 + i, 5.0, 1, True)
        for i in range(30)
    ]
    drawn = render_candles(bars, 40, height, intraday=True)
    assert len(drawn.splitlines()) == height
    assert "┤" in drawn  # the price axis


async def test_intervals_cursor_overlays_and_time_zone(
    make_console, db, monkeypatch: pytest.MonkeyPatch
) -> None:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"))
    await SubscriptionStore(db).add("KRAKEN", ["XBT/USD"], "1min", "historical")
    minutes = random_bars(START, 6 * 60, timedelta(minutes=1), 11)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "7", ChartScreen)
        assert isinstance(screen, ChartScreen)
        await wait_for(pilot, lambda: screen.interval is Interval.M1)
        assert text(screen, "#chart-info").startswith("BTC/USD (KRAKEN:XBT/USD) 1min  120 bars")

        await pilot.press("right_square_bracket")
        assert screen.interval is Interval.M5
        assert "5min derived from 1min  72 bars" in text(screen, "#chart-info")
        want = (await Reader(db).bars("BTC/USD", "5min")).bars
        assert screen.bars == want
        # Every interval 1min bars tile, and back round to 1min.
        seen = [screen.interval]
        for _ in Interval:
            await pilot.press("right_square_bracket")
            seen.append(screen.interval)
        assert seen[:10] == [*list(Interval)[1:], Interval.M1, Interval.M5]

        # A click on a candle puts the cursor on it.
        chart = screen.query_one(CandleChart)
        top = chart.render().plain.split("\n", 1)[0]
        left, right = top.find("┌"), top.find("┐")
        column = left + 1 + (10 * 2 + 1) * (right - left - 1) // (2 * len(want))
        await pilot.click(CandleChart, offset=(column, 5))
        assert screen.cursor == 10
        assert text(screen, "#chart-cursor").startswith(f"{want[10].ts:%m-%d %H:%M} O ")
        await pilot.press("e", "left", "left")
        bar = want[-2]
        cursor = text(screen, "#chart-cursor")
        assert cursor.startswith("03-02 05:50 O ")
        assert f"O {plain(bar.open)} H {plain(bar.high)} L {plain(bar.low)}" in cursor
        assert screen.query_one(CandleChart).drawing.cursor == len(want) - 2

        await pilot.press("s", "m")
        drawing = screen.query_one(CandleChart).drawing
        closes = [b.close for b in want]
        assert drawing.overlays == (ema(closes, 20), sma(closes, 20))
        assert text(screen, "#chart-info").endswith("EMA(20) SMA(20)")
        # Periods from the form; a bad one is refused under its field.
        await pilot.press("p")
        form = await until_screen(pilot, PeriodsModal)
        form.query_one("#sma-input", Input).value = "1"
        form.query_one("#ema-input", Input).value = "9"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field_error(app, "sma") != "")
        assert "from 2 to 500" in field_error(app, "sma")
        form.query_one("#sma-input", Input).value = "5"
        await pilot.press("ctrl+s")
        await until_screen(pilot, ChartScreen)
        assert screen.query_one(CandleChart).drawing.overlays == (ema(closes, 9), sma(closes, 5))
        assert text(screen, "#chart-info").endswith("EMA(9) SMA(5)")
        await pilot.press("s", "b")
        assert screen.query_one(CandleChart).drawing.overlays == (
            *bollinger(closes, 5),
            ema(closes, 9),
        )

        monkeypatch.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        try:
            await pilot.press("t")
            assert text(screen, "#chart-cursor").startswith("03-02 14:50 O ")
            assert " local " in text(screen, "#chart-info")
        finally:
            monkeypatch.delenv("TZ")
            time.tzset()


async def test_running_through_the_series_list_settles_on_the_last_one(make_console, db) -> None:
    symbols = [f"S{i}" for i in range(6)]
    await mapped(db, *((f"C{i}", "KRAKEN", s) for i, s in enumerate(symbols)))
    await SubscriptionStore(db).add("KRAKEN", symbols, "1min", "historical")
    for i, symbol in enumerate(symbols):
        minutes = random_bars(START, 60, timedelta(minutes=1), i)
        await store(db, "historical_data", "KRAKEN", symbol, "1min", minutes)
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "7", ChartScreen)
        assert isinstance(screen, ChartScreen)
        await wait_for(pilot, lambda: screen.current is not None and screen.bars != [])
        await pilot.press(*"jjjkjjk")  # faster than each chart is read
        await wait_for(pilot, lambda: screen.current is not None and screen.current.symbol == "S3")
        await pilot.pause(0.5)
        assert screen.current.symbol == "S3" and screen.bars[-1].ts == START + timedelta(minutes=59)


async def test_compare_draws_the_other_providers_of_a_common_symbol(make_console, db) -> None:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"), ("BTC/USD", "POLY", "X:BTCUSD"))
    await SubscriptionStore(db).add("KRAKEN", ["XBT/USD"], "1min", "historical")
    kraken = random_bars(START, 90, timedelta(minutes=1), 21)
    poly = random_bars(START + timedelta(minutes=30), 90, timedelta(minutes=1), 22)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", kraken)
    await store(db, "historical_data", "POLY", "X:BTCUSD", "1min", poly)
    app = make_console(run_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "7", ChartScreen)
        assert isinstance(screen, ChartScreen)
        await wait_for(pilot, lambda: len(screen.bars) == 90)
        await pilot.press("c")
        (line,) = screen.query_one(CandleChart).drawing.overlays
        # POLY's closes where it has a bar at the same time, nothing before it began.
        assert line == [None] * 30 + [bar[4] for bar in poly[:60]]
        assert "vs POLY:X:BTCUSD" in text(screen, "#chart-info")
        await pilot.press("c")
        assert screen.query_one(CandleChart).drawing.overlays == ()


async def test_the_forming_candle_moves_with_each_trade(make_console, db, tmp_path) -> None:
    await mapped(db, ("BTC/USD", "KRAKEN", "XBT/USD"))
    (sub,) = await SubscriptionStore(db).add("KRAKEN", ["XBT/USD"], "1min", "historical")
    await SubscriptionStore(db).set_enabled([sub.id], False)  # no exchange: the test trades
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minutes = random_bars(now - timedelta(minutes=30), 31, timedelta(minutes=1), 31)
    await store(db, "historical_data", "KRAKEN", "XBT/USD", "1min", minutes)
    app = make_console()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "7", ChartScreen)
        assert isinstance(screen, ChartScreen)
        await wait_for(pilot, lambda: len(screen.bars) == 31)
        engine = app.services.engine
        assert engine is not None
        forming = screen.bars[-1]

        def trade(at: datetime, price: float) -> None:
            """As a live session publishes what it read (engine/live_router.py)."""
            engine.bus.publish(TradesRead("KRAKEN", [Tick("XBT/USD", at, price, 0.5)]))

        trade(forming.ts + timedelta(seconds=10), forming.high + 7.0)
        await wait_for(pilot, lambda: screen.bars[-1].close == forming.high + 7.0)
        moved = screen.bars[-1]
        assert (moved.ts, moved.open, moved.high, moved.low) == (
            forming.ts,
            forming.open,
            forming.high + 7.0,
            forming.low,
        )
        assert not moved.complete and f"C {plain(moved.close)}" in text(screen, "#chart-cursor")
        # A trade in the next minute starts the next candle.
        trade(forming.ts + timedelta(minutes=1, seconds=5), 42.5)
        await wait_for(pilot, lambda: screen.bars[-1].ts == forming.ts + timedelta(minutes=1))
        assert (screen.bars[-1].open, screen.bars[-1].close) == (42.5, 42.5)

        # The time axis's zone is remembered by the next console.
        assert not screen.local_time
        await pilot.press("t")
    assert json.loads((tmp_path / "console.json").read_text())["chart.local_time"] is True
    assert (tmp_path / "console.json").stat().st_mode & 0o077 == 0
    again = make_console(run_engine=False)
    async with again.run_test(size=SIZE) as pilot:
        screen = await open_mode(pilot, "7", ChartScreen)
        assert isinstance(screen, ChartScreen)
        await wait_for(pilot, lambda: " local " in text(screen, "#chart-info"))
