"""How long a busy coroutine may keep the event loop before letting the rest of it run.

A reader working through items that are already there (a socket's buffered messages, a queue
of parsed batches) never suspends, so it can hold the loop for as long as the backlog lasts.
Yielding after every item would cost a turn of the loop each; checking `due()` per item and
awaiting `asyncio.sleep(0)` when it says so costs one clock read.
"""

from __future__ import annotations

import time


class TimeSlice:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until: float | None = None

    def due(self) -> bool:
        """Whether the slice is used up; the next slice starts at the first call after that
        (once the loop has been given up), not at this one."""
        now = time.monotonic()
        if self._until is None:
            self._until = now + self.seconds
            return False
        if now < self._until:
            return False
        self._until = None
        return True
