"""Ticks and candles into bars: exact values, emitted once, never partial."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.aggregator import BarAggregator, Correction, Gap
from quasar_tui.engine.bar_timer import FeedClock
from quasar_tui.sdk.models import Bar, Tick

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, on every intraday boundary


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def tick(seconds: float, price: float, size: float = 1.0, symbol: str = "BTC/USD") -> Tick:
    return Tick(symbol=symbol, ts=at(seconds), price=price, size=size)


def row(interval: str, start: float, o, h, lo, c, v, n, symbol: str = "BTC/USD") -> tuple:
    return ("KRAKEN", symbol, interval, at(start), o, h, lo, c, v, n)


def test_ohlcv_and_trade_counts_per_interval() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1, Interval.M5}}, grace=2.0)
    for seconds, price, size in [
        (1, 100, 1),
        (20, 105, 2),
        (40, 99, 0.5),
        (59.9, 101, 1),
        (60, 102, 3),
        (119, 98, 1),
        (300, 110, 1),
    ]:
        agg.add_tick(tick(seconds, price, size))

    assert agg.due(at(61)) == []  # minute 0 closed 1 s ago: still inside the grace
    assert agg.due(at(62.5)) == [row("1min", 0, 100, 105, 99, 101, 4.5, 4)]
    assert agg.due(at(200)) == [row("1min", 60, 102, 102, 98, 98, 4, 2)]
    assert agg.due(at(302.5)) == [row("5min", 0, 100, 105, 98, 98, 8.5, 6)]
    assert agg.due(at(10_000)) == [
        row("1min", 300, 110, 110, 110, 110, 1, 1),
        row("5min", 300, 110, 110, 110, 110, 1, 1),
    ]
    assert agg.due(at(20_000)) == []
    assert agg.stats.bars_emitted == 5


def test_symbols_are_routed_and_unknown_ones_counted() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}, "ETH/USD": {Interval.M1}})
    agg.add_tick(tick(1, 100))
    agg.add_tick(tick(2, 10, symbol="ETH/USD"))
    agg.add_tick(tick(3, 5, symbol="DOGE/USD"))
    rows = agg.due(at(100))
    assert rows == [
        row("1min", 0, 100, 100, 100, 100, 1, 1),
        row("1min", 0, 10, 10, 10, 10, 1, 1, symbol="ETH/USD"),
    ]
    assert agg.stats.unrouted == 1


def test_a_tick_after_its_bar_was_written_asks_for_that_bar_to_be_rebuilt() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}}, grace=2.0)
    agg.add_tick(tick(10, 100))
    agg.add_tick(tick(61, 101))  # opens the next bar
    agg.add_tick(tick(59, 90))  # arrives late, but before minute 0 is written
    assert agg.due(at(62.5)) == [row("1min", 0, 100, 100, 90, 90, 2, 2)]
    assert agg.take_corrections() == []
    agg.add_tick(tick(30, 200))  # truly late: minute 0 was written already
    agg.add_tick(tick(31, 201))  # its bar is rebuilt once, however many come
    assert (agg.stats.late_corrected, agg.stats.late_dropped) == (2, 0)
    assert agg.take_corrections() == [Correction("BTC/USD", Interval.M1, at(0), at(60))]
    assert agg.take_corrections() == []
    assert agg.due(at(1000)) == [row("1min", 60, 101, 101, 101, 101, 1, 1)]


def test_without_stored_ticks_a_truly_late_tick_is_dropped_and_counted() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}}, grace=2.0, correct_late=False)
    agg.add_tick(tick(10, 100))
    assert agg.due(at(62.5)) == [row("1min", 0, 100, 100, 100, 100, 1, 1)]
    agg.add_tick(tick(30, 200))
    assert (agg.stats.late_corrected, agg.stats.late_dropped) == (0, 1)
    assert agg.take_corrections() == []


def test_a_bar_with_no_ticks_yet_can_be_opened_by_a_late_tick() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}}, grace=5.0)
    agg.add_tick(tick(1, 100))
    agg.add_tick(tick(125, 102))
    agg.add_tick(tick(90, 101))  # minute 1 had no trade until this late one
    assert agg.due(at(1000)) == [
        row("1min", 0, 100, 100, 100, 100, 1, 1),
        row("1min", 60, 101, 101, 101, 101, 1, 1),
        row("1min", 120, 102, 102, 102, 102, 1, 1),
    ]


def test_shutdown_drops_the_open_bar_instead_of_writing_it_partial() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}}, grace=2.0)
    agg.add_tick(tick(1, 100))
    agg.add_tick(tick(61, 101))
    assert agg.flush_all(at(70)) == [row("1min", 0, 100, 100, 100, 100, 1, 1)]
    assert agg.stats.partial_dropped == 1
    assert agg.due(at(1000)) == []


def test_a_series_joined_mid_bar_drops_that_bar_and_reports_the_gap() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1, Interval.M5}}, grace=2.0)
    gaps = agg.observe_from(at(30))
    assert gaps == [
        Gap("BTC/USD", Interval.M1, at(0), at(60)),
        Gap("BTC/USD", Interval.M5, at(0), at(300)),
    ]
    agg.add_tick(tick(45, 100))  # in the partial first minute: not written
    agg.add_tick(tick(70, 101))
    assert agg.due(at(400)) == [row("1min", 60, 101, 101, 101, 101, 1, 1)]
    # both ticks fall in the partial first 5 minutes: left to the history fill, not lost
    assert (agg.stats.history_filled, agg.stats.late_dropped) == (3, 0)


def test_interruption_drops_unfinished_bars_and_reports_the_missing_span() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}}, grace=2.0)
    agg.observe_from(at(0))  # joined exactly on an edge: minute 1 is the first full one
    agg.add_tick(tick(65, 100))
    agg.add_tick(tick(125, 101))
    agg.add_tick(tick(150, 102))
    agg.interrupt(at(170))  # minute 2 was open: it may lack trades
    assert agg.stats.partial_dropped == 1
    agg.add_tick(tick(175, 99))  # nothing is accepted while interrupted
    gaps = agg.observe_from(at(250))
    assert gaps == [Gap("BTC/USD", Interval.M1, at(120), at(300))]
    agg.add_tick(tick(260, 103))  # inside the gap: REST fills it
    agg.add_tick(tick(301, 104))
    assert agg.due(at(1000)) == [
        row("1min", 60, 100, 100, 100, 100, 1, 1),
        row("1min", 300, 104, 104, 104, 104, 1, 1),
    ]


def test_interruption_within_grace_keeps_bars_that_closed_in_time() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}}, grace=2.0)
    agg.observe_from(at(-1))
    agg.add_tick(tick(30, 100))
    agg.add_tick(tick(61, 101))
    agg.interrupt(at(90))  # minute 0 closed well before: complete
    assert agg.observe_from(at(100)) == [Gap("BTC/USD", Interval.M1, at(60), at(120))]
    assert agg.due(at(1000)) == [row("1min", 0, 100, 100, 100, 100, 1, 1)]


def test_candles_are_final_only_when_a_later_one_begins() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}}, grace=2.0)

    def candle(start: float, close: float, trades: int) -> Bar:
        return Bar(
            ts=at(start),
            open=100,
            high=max(100, close),
            low=min(100, close),
            close=close,
            volume=trades,
            symbol="BTC/USD",
            trades=trades,
            interval=Interval.M1,
        )

    agg.add_bar(candle(0, 101, 1))
    agg.add_bar(candle(0, 103, 2))  # the same candle, updated
    assert agg.due(at(600)) == []  # no later candle yet: not final however old
    agg.add_tick(tick(10, 500))  # trades do not feed a candle-fed series
    agg.add_bar(candle(60, 99, 1))
    assert agg.due(at(600)) == [row("1min", 0, 100, 103, 100, 103, 2, 2)]
    agg.add_bar(candle(0, 50, 9))  # a stale version of a written candle
    assert agg.stats.late_dropped == 1
    assert agg.due(at(1200)) == []


def test_weekly_and_monthly_bars_start_on_monday_and_the_first() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.W1, Interval.MO1}}, grace=0)
    wednesday = datetime(2026, 3, 4, 15, tzinfo=UTC)
    agg.add_tick(Tick(symbol="BTC/USD", ts=wednesday, price=7.0, size=2))
    rows = agg.due(datetime(2026, 5, 1, tzinfo=UTC))
    assert sorted((r[2], r[3]) for r in rows) == [
        ("1M", datetime(2026, 3, 1, tzinfo=UTC)),
        ("1w", datetime(2026, 3, 2, tzinfo=UTC)),
    ]


def test_changing_intervals_keeps_open_bars_of_kept_series() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}})
    agg.add_tick(tick(1, 100))
    agg.set_intervals({"BTC/USD": {Interval.M1}, "ETH/USD": {Interval.M5}})
    agg.add_tick(tick(2, 102))
    assert agg.due(at(1000)) == [row("1min", 0, 100, 102, 100, 102, 2, 2)]
    agg.set_intervals({"ETH/USD": {Interval.M5}})
    agg.add_tick(tick(1003, 104))
    assert agg.stats.unrouted == 1
    assert agg.series_keys() == [("ETH/USD", Interval.M5)]


class Wall:
    """The engine's wall clock, set by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_bars_close_by_the_feeds_time_and_by_the_wall_clock_only_in_silence() -> None:
    agg = BarAggregator("KRAKEN", {"BTC/USD": {Interval.M1}}, grace=1.0)
    agg.observe_from(at(-1))
    wall, waiting = Wall(at(0)), [False]
    feed = FeedClock(agg, wall, 1.0, lambda: waiting[0])
    written = []
    for tenth in range(1200):  # two minutes of a trade every 0.1 s, each read 5 s late
        wall.now = at(tenth / 10 + 5)
        agg.add_tick(tick(tenth / 10, 100 + tenth % 7))
        feed.heard = wall.now
        written += agg.due_at(feed.now())
    assert [r[3] for r in written] == [at(0)]  # minute 1 waits for a later trade
    assert written[0][9] == 600  # not one of minute 0's trades is missing
    wall.now = at(125.7)  # quiet for 0.8 s: a trade may still be on its way
    assert agg.due_at(feed.now()) == []
    waiting[0] = True  # the session waits for room in the writer: reading nothing
    wall.now = at(127)
    assert agg.due_at(feed.now()) == []
    waiting[0] = False  # the session is free to read, and nothing came for 2 s
    assert [r[9] for r in agg.due_at(feed.now())] == [600]
