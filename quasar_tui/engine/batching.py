"""The bounded queue in front of one table's committer, and how it cuts batches.

Counted in rows: producers wait while it is full. Rows put while earlier ones still wait join
their part (a part is at most `flush_rows` rows, timed by its oldest), so a feed putting one row
a message costs a list append, not a part of its own. A batch is due when the queue holds
`flush_rows` rows, its oldest row is `flush_seconds` old, someone waits in `flush()`, or the
queue is closing. When rows pile up behind a commit, the next batch takes up to
`max_batch_rows` of them at once: each commit waits for a WAL flush, so fewer, larger commits
keep up with bulk loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any


class WriterStopped(RuntimeError):
    """Rows were handed to a writer that is not running, or stopped before writing them."""


class BatchQueue:
    """Rows put by producers, taken in batches by one consumer task."""

    def __init__(
        self,
        name: str,
        capacity: int,
        flush_rows: int,
        flush_seconds: float,
        max_batch_rows: int,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_batch_rows = max(flush_rows, max_batch_rows)
        self.depth = 0  # rows put and not yet committed, including the batch in flight
        self._pending: deque[tuple[float, list[Any]]] = deque()  # (time of oldest, rows)
        self._pending_rows = 0
        self._put_total = 0
        self._taken_total = 0
        self._done_total = 0
        self._flush_until = 0
        self._inflight_since: float | None = None
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._consuming = False
        self._closing = False

    # -- producers ---------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        return self._consuming and not self._closing

    def offer(self, rows: Sequence[Any]) -> bool:
        """Queue rows (at most `flush_rows`) at once if they fit; False when they do not and the
        caller must `put` them (and wait)."""
        if not self.accepting:
            raise WriterStopped(f"the {self.name} writer is not running")
        size = len(rows)
        if size > self.flush_rows or (self.depth and self.depth + size > self.capacity):
            return False
        self._append(rows, size)
        return True

    async def put(self, rows: Sequence[Any]) -> None:
        """Queue rows in parts of `flush_rows`, each waiting while the queue is full."""
        if not self.accepting:
            raise WriterStopped(f"the {self.name} writer is not running")
        step = self.flush_rows
        for i in range(0, len(rows), step):
            part = rows[i : i + step]
            size = len(part)
            if self.depth and self.depth + size > self.capacity:
                async with self._changed:
                    await self._changed.wait_for(partial(self._has_room, size))
                if not self.accepting:
                    raise WriterStopped(f"the {self.name} writer stopped")
            self._append(part, size)

    def _append(self, rows: Sequence[Any], size: int) -> None:
        pending = self._pending
        was_empty = not pending
        if not was_empty and len(pending[-1][1]) + size <= self.flush_rows:
            pending[-1][1].extend(rows)
        else:
            pending.append((time.monotonic(), list(rows)))
        self._pending_rows += size
        self.depth += size
        self._put_total += size
        if was_empty or self._pending_rows >= self.flush_rows:
            self._wake.set()  # otherwise the consumer is already timing the oldest part

    def _has_room(self, size: int) -> bool:
        """Whether `size` more rows fit (an empty queue takes any part), or waiting is over."""
        return self.depth == 0 or self.depth + size <= self.capacity or not self.accepting

    async def flush(self) -> None:
        """Return once every row put before this call is committed."""
        target = self._put_total
        if self._done_total >= target:
            return
        if not self._consuming:
            raise WriterStopped(f"the {self.name} writer is not running")
        self._flush_until = max(self._flush_until, target)
        self._wake.set()
        async with self._changed:
            await self._changed.wait_for(lambda: self._done_total >= target or not self._consuming)
        if self._done_total < target:
            raise WriterStopped(f"the {self.name} writer stopped before writing its rows")

    # -- the consumer ------------------------------------------------------------------------

    def open(self) -> None:
        """A consumer is about to take batches."""
        self._consuming, self._closing = True, False

    def close(self) -> None:
        """Take no more rows; the consumer gets what is queued, then None."""
        self._closing = True
        self._wake.set()

    async def ended(self) -> None:
        """The consumer is gone: wake producers and flushers so they can give up."""
        self._consuming = False
        async with self._changed:
            self._changed.notify_all()

    async def next_batch(self) -> list[Any] | None:
        """The next batch once one is due; None once closing and empty."""
        while True:
            self._wake.clear()
            timeout: float | None = None
            if self._pending:
                age = time.monotonic() - self._pending[0][0]
                if (
                    self._pending_rows >= self.flush_rows
                    or age >= self.flush_seconds
                    or self._flush_until > self._taken_total
                    or self._closing
                ):
                    return self._take()
                timeout = self.flush_seconds - age
            elif self._closing:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def committed(self, rows: int) -> None:
        """The batch taken last is written (or refused for good): make room."""
        self._done_total += rows
        self.depth -= rows
        self._inflight_since = None
        async with self._changed:
            self._changed.notify_all()

    def _take(self) -> list[Any]:
        self._inflight_since = self._pending[0][0]
        rows = self._pending.popleft()[1]
        limit = self.max_batch_rows
        while self._pending and len(rows) + len(self._pending[0][1]) <= limit:
            rows.extend(self._pending.popleft()[1])
        self._pending_rows -= len(rows)
        self._taken_total += len(rows)
        return rows

    def lag_seconds(self) -> float:
        """How long the oldest row not yet committed has waited."""
        oldest = self._inflight_since
        if oldest is None and self._pending:
            oldest = self._pending[0][0]
        return 0.0 if oldest is None else max(0.0, time.monotonic() - oldest)
