"""Duplicate trades are recognised by id, without dropping older trades never seen; skipped
ids are reported as trades never received."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quasar_tui.engine.trade_ids import TradeIds

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def at(n: int) -> datetime:
    return T0 + timedelta(seconds=n)


def test_in_order_trades_are_new_once() -> None:
    ids = TradeIds()
    assert [ids.first_time("BTC/USD", n, at(n)) for n in (1, 2, 3)] == [True, True, True]
    assert [ids.first_time("BTC/USD", n, at(n)) for n in (2, 3)] == [False, False]
    assert ids.first_time("ETH/USD", 2, at(2))  # ids are per symbol


def test_older_trades_never_seen_are_new_once() -> None:
    ids = TradeIds()
    for n in (10, 11, 15):  # 12 to 14 were made while the connection was down
        ids.first_time("BTC/USD", n, at(n))
    snapshot = [11, 12, 13, 14, 15]
    assert [ids.first_time("BTC/USD", n, at(n)) for n in snapshot] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert not any(ids.first_time("BTC/USD", n, at(n)) for n in snapshot)


def test_ids_beyond_the_window_count_as_seen_and_big_jumps_reset_it() -> None:
    ids = TradeIds(window=8)
    ids.first_time("BTC/USD", 100, at(0))
    assert ids.first_time("BTC/USD", 95, at(0))
    assert not ids.first_time("BTC/USD", 92, at(0))  # 8 behind the newest: too old to tell
    assert ids.first_time("BTC/USD", 10_000_000, at(1))  # a jump far past the window
    assert ids.first_time("BTC/USD", 9_999_999, at(1))
    assert not ids.first_time("BTC/USD", 10_000_000, at(1))


def test_skipped_ids_are_reported_with_the_newest_seen_before_them() -> None:
    skips: list[tuple] = []
    ids = TradeIds(on_skip=lambda *skip: skips.append(skip))
    ids.seed("BTC/USD", 7, at(7))  # the newest stored tick, at a restart
    for n in (6, 7, 8, 9, 12, 10, 13):
        ids.first_time("BTC/USD", n, at(n))
    assert skips == [("BTC/USD", 9, at(9), 12)]  # 10 came later; 11 never did

    ids.forget(["BTC/USD"])  # unsubscribed: a later subscription starts afresh
    assert ids.first_time("BTC/USD", 500, at(500))
    assert len(skips) == 1
