"""Duplicate trades are recognised by id, without dropping older trades never seen."""

from __future__ import annotations

from quasar_tui.engine.trade_ids import TradeIds


def test_in_order_trades_are_new_once() -> None:
    ids = TradeIds()
    assert [ids.first_time("BTC/USD", n) for n in (1, 2, 3)] == [True, True, True]
    assert [ids.first_time("BTC/USD", n) for n in (2, 3)] == [False, False]
    assert ids.first_time("ETH/USD", 2)  # ids are per symbol


def test_older_trades_never_seen_are_new_once() -> None:
    ids = TradeIds()
    for n in (10, 11, 15):  # 12 to 14 were made while the connection was down
        ids.first_time("BTC/USD", n)
    snapshot = [11, 12, 13, 14, 15]
    assert [ids.first_time("BTC/USD", n) for n in snapshot] == [False, True, True, True, False]
    assert not any(ids.first_time("BTC/USD", n) for n in snapshot)


def test_ids_beyond_the_window_count_as_seen_and_big_jumps_reset_it() -> None:
    ids = TradeIds(window=8)
    ids.first_time("BTC/USD", 100)
    assert ids.first_time("BTC/USD", 95)
    assert not ids.first_time("BTC/USD", 92)  # 8 behind the newest: too old to tell
    assert ids.first_time("BTC/USD", 10_000_000)  # a jump far past the window
    assert ids.first_time("BTC/USD", 9_999_999)
    assert not ids.first_time("BTC/USD", 10_000_000)
