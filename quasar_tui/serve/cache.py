"""Rendered answers kept in memory: a bounded LRU with a time to live, dropped per series.

An answer is tagged with the series it was read from. When bars of a series are written, its
answers go, and an answer whose read overlapped any invalidation is not stored (it may predate
the write), so a cached answer is never older than the database's. The TTL
bounds staleness where no announcement arrives (ticks, mappings, a writer that does not announce).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """A response body ready to send, with its media type."""

    body: bytes
    media_type: str


@dataclass
class _Entry:
    answer: Answer
    tags: tuple[str, ...]
    expires: float


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    invalidations: int = 0


class AnswerCache:
    """At most `max_bytes` of bodies (none over `max_item`), each for at most `ttl` seconds."""

    def __init__(
        self,
        *,
        ttl: float = 5.0,
        max_bytes: int = 64 * 2**20,
        max_item: int = 8 * 2**20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.max_item = max_item
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._by_tag: dict[str, set[Hashable]] = {}
        self._epoch = 0
        self._size = 0
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        return self._size

    def mark(self) -> int:
        """Taken before reading; `put` stores the answer only if nothing was invalidated since."""
        return self._epoch

    def get(self, key: Hashable) -> Answer | None:
        entry = self._entries.get(key)
        if entry is None or entry.expires <= self._clock():
            if entry is not None:
                self._remove(key)
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry.answer

    def put(self, key: Hashable, answer: Answer, tags: tuple[str, ...], mark: int) -> None:
        if self.ttl <= 0 or len(answer.body) > self.max_item or mark != self._epoch:
            return
        if key in self._entries:
            self._remove(key)
        self._entries[key] = _Entry(answer, tags, self._clock() + self.ttl)
        self._size += len(answer.body)
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while self._size > self.max_bytes and self._entries:
            self._remove(next(iter(self._entries)))
            self.stats.evictions += 1

    def invalidate(self, tag: str) -> int:
        """Drop every answer of `tag` and refuse answers read before now; how many went."""
        self._epoch += 1
        keys = self._by_tag.pop(tag, set())
        for key in keys:
            self._remove(key)
        self.stats.invalidations += len(keys)
        return len(keys)

    def clear(self) -> None:
        """Everything goes (the announcements may have been missed)."""
        self._epoch += 1
        self._entries.clear()
        self._by_tag.clear()
        self._size = 0

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._size -= len(entry.answer.body)
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
