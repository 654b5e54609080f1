"""The live connection loop, run inside the host: connect, subscribe, read, heartbeat, watch
for silence, reconnect with backoff and subscribe again.

Parsed records go to the engine in batches: while one batch is being written to the pipe the
next accumulates, so a busy feed sends few large frames and a quiet one sends each record at
once. Aggregation, gap filling and storage stay in the engine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from quasar_tui.core.backoff import Backoff
from quasar_tui.core.intervals import Interval
from quasar_tui.sandbox.protocol import Live, Msg, State
from quasar_tui.sdk.base import LiveDataProvider
from quasar_tui.sdk.models import Bar, Quote, SubscriptionRefused, Tick

CONNECT_TIMEOUT = 15.0
READ_SLICE = 0.005
MAX_PENDING = 20_000  # records parsed but not yet written; the reader waits beyond this
HEALTHY_AFTER = 30.0

Send = Callable[[Msg], Awaitable[None]]


def encode_frames(messages: Any) -> list[str | bytes]:
    """What `_subscribe` and friends return (dict, str, bytes or a list of them) as frames."""
    if messages is None:
        return []
    if isinstance(messages, list | tuple):
        return [frame for m in messages for frame in encode_frames(m)]
    if isinstance(messages, str | bytes):
        return [messages]
    return [json.dumps(messages)]


class IdleTimeout(ConnectionError):
    """The feed said nothing, not even a heartbeat, for longer than the provider allows."""


class LiveFeed:
    def __init__(self, provider: LiveDataProvider, send: Send) -> None:
        self.provider = provider
        self._send = send
        self._subs: dict[str, list[Interval]] = {}
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff(base=0.5, cap=30.0)
        self._last = time.monotonic()
        self._pending = Live()
        self._count = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    async def set_subscriptions(self, subs: dict[str, list[Interval]]) -> None:
        async with self._lock:
            before, self._subs = self._subs, {s: ivs for s, ivs in subs.items() if ivs}
            if not self._subs:
                await self.stop()
                return
            if self._task is None:
                self._task = asyncio.create_task(self._run(), name="host:live")
                self._flusher = asyncio.create_task(self._flush_loop(), name="host:flush")
                return
            if self._conn is None:
                return
            gone = sorted(s for s in before if s not in self._subs)
            if gone:
                await self._write(await self.provider._unsubscribe(gone))
            added = {
                s: [iv for iv in ivs if iv not in before.get(s, [])]
                for s, ivs in self._subs.items()
            }
            await self._subscribe({s: ivs for s, ivs in added.items() if ivs})

    async def stop(self) -> None:
        for task in (self._task, self._flusher):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._flusher = None
        await self._close()
        await self._send(State("idle"))

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            connected = False
            try:
                await self._send(State("connecting"))
                self._conn = await asyncio.wait_for(self.provider._connect(), CONNECT_TIMEOUT)
                connected = True
                self._last = time.monotonic()
                async with self._lock:
                    await self._subscribe(self._subs)
                await self._send(State("connected"))
                await self._stream()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state = "disconnected" if connected else "error"
                await self._send(State(state, f"{type(exc).__name__}: {exc}"[:300]))
            finally:
                await self._close()
            if connected and time.monotonic() - started >= HEALTHY_AFTER:
                self._backoff.reset()
            await asyncio.sleep(self._backoff.next())

    async def _subscribe(self, subs: dict[str, list[Interval]]) -> None:
        by_interval: dict[Interval, list[str]] = {}
        for sym, ivs in sorted(subs.items()):
            for iv in ivs:
                by_interval.setdefault(iv, []).append(sym)
        for iv, symbols in sorted(by_interval.items(), key=lambda kv: kv[0].seconds):
            await self._write(await self.provider._subscribe(iv, symbols))

    async def _write(self, messages: Any) -> None:
        if self._conn is not None:
            for frame in encode_frames(messages):
                await self._conn.send(frame)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except Exception as exc:  # gone either way; the engine hears why
                await self._send(State("closing", f"close failed: {type(exc).__name__}: {exc}"))

    async def _stream(self) -> None:
        tasks = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._watchdog()),
            asyncio.create_task(self._heartbeat()),
        ]
        heartbeat, pending = tasks[2], set(tasks)
        try:
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
                    if task is not heartbeat:
                        raise ConnectionError("the feed closed the connection")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self) -> None:
        parse = self.provider._parse_message
        pause_at = time.monotonic() + READ_SLICE
        async for message in self._conn:
            self._last = now = time.monotonic()
            try:
                records = await parse(message)
            except Exception as exc:
                await self._send(State("bad-message", f"{type(exc).__name__}: {exc}"[:300]))
                continue
            if records:
                self._add(records)
                if self._count >= MAX_PENDING:
                    self._room.clear()
                    await self._room.wait()
            if now >= pause_at:
                await asyncio.sleep(0)
                pause_at = time.monotonic() + READ_SLICE

    def _add(self, records: Any) -> None:
        pending = self._pending
        for r in records:
            kind = type(r)
            if kind is Tick:
                pending.ticks.append(r)
            elif kind is Quote:
                pending.quotes.append(r)
            elif kind is Bar:
                pending.bars.append(r)
            elif kind is SubscriptionRefused:
                pending.refused.append(r)
            else:
                continue
            self._count += 1
        self._wake.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending, self._count = self._pending, Live(), 0
            self._room.set()
            await self._send(batch)

    async def _watchdog(self) -> None:
        idle = float(self.provider.IDLE_TIMEOUT)
        while True:
            silent = time.monotonic() - self._last
            if silent > idle:
                raise IdleTimeout(f"no message for {idle:g} s")
            await asyncio.sleep(min(1.0, idle - silent + 0.01))

    async def _heartbeat(self) -> None:
        every = float(self.provider.HEARTBEAT_INTERVAL)
        while True:
            await asyncio.sleep(every)
            message = await self.provider._heartbeat()
            if message is None:
                return
            await self._write(message)
