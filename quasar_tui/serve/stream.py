"""Fan-out of live data to stream clients: conflated ticks and written bars.

Ticks are conflated per series: the hub keeps the latest and sends it at most `TICKS_PER_SECOND`
times a second, the ticks of all a client's series in one message (`{"type":"ticks","ticks":
[...]}`), so a client of 100 series gets 10 frames a second, not 1,000. Each tick is encoded
once and shared. Each client has a bounded queue; a client that lets it fill is dropped with a
close reason, so a slow reader costs only its own connection and never delays anyone else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import msgspec

from quasar_tui.serve.metrics import ServerMetrics
from quasar_tui.store.read import ReadBar

TICKS_PER_SECOND = 10
QUEUE_MESSAGES = 1000
SLOW_CLOSE_CODE = 1013  # "try again later"
Kind = Literal["ticks", "bars"]
KINDS: tuple[Kind, ...] = ("ticks", "bars")

_encoder = msgspec.json.Encoder()
_TICKS_HEAD = b'{"type":"ticks","ticks":['


class Tick(msgspec.Struct, frozen=True):
    series: str
    common: str | None
    ts: datetime
    price: float | None
    bid: float | None = None
    ask: float | None = None


class BarMessage(msgspec.Struct, frozen=True, tag="bar", tag_field="type"):
    series: str
    common: str | None
    interval: str
    bar: ReadBar


@dataclass(eq=False)
class StreamClient:
    """One connection: the series keys it follows, what kinds, and what waits to be sent."""

    series: set[str]
    kinds: set[Kind]
    limit: int = QUEUE_MESSAGES
    dropped: str | None = None
    _queue: deque[str] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, message: str) -> bool:
        """Queue a message; False (and the client marked dropped) when it is full."""
        if self.dropped is not None:
            return False
        if len(self._queue) >= self.limit:
            self.dropped = (
                f"too slow: {self.limit} messages were waiting; read faster or follow fewer series"
            )
            self._queue.clear()
            self._ready.set()
            self.gone.set()
            return False
        self._queue.append(message)
        self._ready.set()
        return True

    async def next_batch(self) -> list[str]:
        """What is queued, waiting until something is; empty once the client is dropped."""
        while not self._queue and self.dropped is None:
            self._ready.clear()
            await self._ready.wait()
        if self.dropped is not None:
            return []
        batch = list(self._queue)
        self._queue.clear()
        return batch


class Hub:
    """Clients by series; feeds call `note_tick` and `note_bar`, `run` paces the ticks."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics
        self.clients: set[StreamClient] = set()
        self._following: dict[str, dict[Kind, set[StreamClient]]] = {}
        self._common: dict[str, str | None] = {}
        self._ticks: dict[str, Tick] = {}

    def add(self, client: StreamClient, common: dict[str, str | None]) -> None:
        self.clients.add(client)
        self._common.update(common)
        for key in client.series:
            kinds = self._following.setdefault(key, {})
            for kind in client.kinds:
                kinds.setdefault(kind, set()).add(client)

    def remove(self, client: StreamClient) -> None:
        self.clients.discard(client)
        for key in client.series:
            kinds = self._following.get(key, {})
            for kind in client.kinds:
                kinds.get(kind, set()).discard(client)
            if not any(kinds.values()):
                self._following.pop(key, None)
                self._ticks.pop(key, None)

    def wants(self, key: str, kind: Kind) -> bool:
        return bool(self._following.get(key, {}).get(kind))

    def wants_any(self, kind: Kind) -> bool:
        return any(kinds.get(kind) for kinds in self._following.values())

    def note_tick(
        self,
        key: str,
        ts: datetime,
        price: float | None,
        bid: float | None = None,
        ask: float | None = None,
    ) -> None:
        """Keep the latest tick of a followed series until the next send."""
        if self.wants(key, "ticks"):
            self._ticks[key] = Tick(key, self._common.get(key), ts, price, bid, ask)

    def note_bar(self, key: str, interval: str, bar: ReadBar) -> None:
        """A written bar goes out at once to the clients following its series' bars."""
        clients = self._following.get(key, {}).get("bars")
        if clients:
            message = _encoder.encode(BarMessage(key, self._common.get(key), interval, bar))
            for client in list(clients):
                self._send(client, message.decode("utf-8"))

    def flush_ticks(self) -> None:
        """Each client's conflated ticks since the last flush, as one message."""
        ticks, self._ticks = self._ticks, {}
        parts: dict[StreamClient, list[bytes]] = {}
        for key, tick in ticks.items():
            clients = self._following.get(key, {}).get("ticks")
            if clients:
                self.metrics.stream_ticks += 1
                body = _encoder.encode(tick)
                for client in clients:
                    parts.setdefault(client, []).append(body)
        for client, bodies in parts.items():
            self._send(client, (_TICKS_HEAD + b",".join(bodies) + b"]}").decode("utf-8"))

    def _send(self, client: StreamClient, message: str) -> None:
        if client.offer(message):
            self.metrics.stream_messages += 1
        elif client in self.clients:
            self.metrics.stream_dropped += 1
            self.remove(client)

    async def run(self) -> None:
        """Send the latest tick of each series every 1/TICKS_PER_SECOND seconds."""
        while True:
            await asyncio.sleep(1.0 / TICKS_PER_SECOND)
            self.flush_ticks()
