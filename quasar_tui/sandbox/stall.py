"""A thread that notices when the host's event loop is blocked, and says where.

The loop touches a timestamp every `TICK` seconds; when the timestamp is older than the limit,
the thread prints the loop thread's stack to stderr (which the engine logs with the provider's
name) once per stall.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback

TICK = 0.25


class StallWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, limit: float = 2.0) -> None:
        self.limit = limit
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._seen = time.monotonic()
        self._reported = False

    def start(self) -> None:
        self._loop.call_soon(self._touch)
        threading.Thread(target=self._watch, name="quasar-stall-watch", daemon=True).start()

    def _touch(self) -> None:
        self._seen = time.monotonic()
        self._reported = False
        self._loop.call_later(TICK, self._touch)

    def _watch(self) -> None:
        while True:
            time.sleep(TICK)
            blocked = time.monotonic() - self._seen
            if blocked > self.limit and not self._reported:
                self._reported = True
                self._report(blocked)

    def _report(self, blocked: float) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        stack = traceback.format_stack(frame)[-6:] if frame is not None else []
        where = "".join(stack).rstrip()
        sys.stderr.write(
            f"event loop blocked for more than {self.limit:g} s (a sync call in async code?); "
            f"the call blocking it:\n{where}\n"
        )
        sys.stderr.flush()
