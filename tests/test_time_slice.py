"""The slice a busy reader keeps the event loop for (core/time_slice.py)."""

from __future__ import annotations

import time

from quasar_tui.core.time_slice import TimeSlice


def test_a_slice_is_due_once_its_time_is_used_and_the_next_starts_after_the_turn() -> None:
    slice_ = TimeSlice(0.02)
    assert [slice_.due() for _ in range(100)] == [False] * 100  # well within 20 ms
    time.sleep(0.03)
    assert slice_.due()
    time.sleep(0.03)  # the loop's turn, however long, is not charged to the next slice
    assert not slice_.due()
    assert not slice_.due()
    time.sleep(0.03)
    assert slice_.due()
