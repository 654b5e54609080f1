"""The live connection loop, the one there is: connect, subscribe, read, heartbeat, watch for
silence, reconnect with backoff and subscribe again. It runs inside the provider host; `LocalFeed`
runs the same loop in the caller's process (tests and the in-process side of bench.live).

Parsed records go to the engine in batches, at most one every `HAND_ON_EVERY` seconds: a busy
feed of one trade a message sends a frame per few milliseconds of trades, not one per socket
read (each frame costs both processes a wakeup), and a record after a quiet spell goes at once.
State changes are handed on after the records read before them, so the engine never hears of a
disconnect before the last trades of that connection. Aggregation, gap filling and storage stay
in the engine.

Anything the server sends counts as activity for `IDLE_TIMEOUT`, WebSocket ping frames
included (they never reach `_parse_message`): a quiet pair on a healthy connection is not
reconnected.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from quasar_tui.core.backoff import Backoff
from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.core.time_slice import TimeSlice
from quasar_tui.sandbox.protocol import Live, Msg, State
from quasar_tui.sdk.base import LiveDataProvider
from quasar_tui.sdk.models import Bar, Quote, SubscriptionRefused, Tick

CONNECT_TIMEOUT = 15.0
READ_SLICE = 0.005  # seconds the reader may keep the event loop before letting others run
HAND_ON_EVERY = 0.005  # seconds between batches at least: the latency a batch may add
MAX_PENDING = 20_000  # records parsed but not yet handed on; the reader waits beyond this
HEALTHY_AFTER = 30.0  # seconds connected after which the backoff starts from its base again
LOCAL_QUEUE = 256  # batches and states a `LocalFeed` holds before its feed waits

Send = Callable[[Msg], Awaitable[None]]
Fatal = Callable[[BaseException], None]


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
    """Streams one provider's subscription set to `send` as `Live` batches and `State`s."""

    def __init__(
        self,
        provider: LiveDataProvider,
        send: Send,
        *,
        backoff: Backoff | None = None,
        healthy_after: float = HEALTHY_AFTER,
        on_fatal: Fatal | None = None,
    ) -> None:
        """`on_fatal` hears a MemoryError (the host ends itself to be restarted); without
        it, one counts as a failed connection."""
        self.provider = provider
        self._send = send
        self._on_fatal = on_fatal
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._healthy_after = healthy_after
        self._subs: dict[str, list[Interval]] = {}
        self._conn: Any = None
        self._subscribed = False  # the set went out on this connection: changes go out too
        self._go = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last = time.monotonic()
        self._pending = Live()
        self._count = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._lock = asyncio.Lock()
        self._sending = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    async def set_subscriptions(self, subs: dict[str, list[Interval]]) -> None:
        """The whole set (symbol -> intervals); changes go out on the live connection."""
        async with self._lock:
            before, self._subs = self._subs, {s: ivs for s, ivs in subs.items() if ivs}
            if not self._subs:
                await self.stop()
                return
            if self._task is None:
                self._task = asyncio.create_task(self._run(), name="feed:live")
                self._flusher = asyncio.create_task(self._flush_loop(), name="feed:flush")
                return
            if not self._subscribed:
                return  # the connection being made subscribes the whole set
            gone = sorted(s for s in before if s not in self._subs)
            if gone:
                await self._write(await self.provider._unsubscribe(gone))
            added = {
                s: [iv for iv in ivs if iv not in before.get(s, [])]
                for s, ivs in self._subs.items()
            }
            await self._subscribe({s: ivs for s, ivs in added.items() if ivs})

    async def stop(self, *, report: bool = True) -> None:
        """Close the connection; `report` says "idle" to the engine afterwards."""
        for task in (self._task, self._flusher):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._flusher = None
        await self._close()
        if report:
            await self._state(State("idle"))

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            connected = False
            try:
                await self._state(State("connecting"))
                self._conn = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
                connected = True
                self._go.clear()
                await self._state(State("connected"))
                await asyncio.wait_for(self._go.wait(), CONNECT_TIMEOUT)
                self._last = time.monotonic()
                async with self._lock:
                    await self._subscribe(self._subs)
                    self._subscribed = True
                await self._stream()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._check_fatal(exc)
                await self._lost(exc, connected)
            finally:
                await self._close()
            if connected and time.monotonic() - started >= self._healthy_after:
                self._backoff.reset()
            await asyncio.sleep(self._backoff.next())

    def observing(self) -> None:
        """The engine heard "connected" and marked where it observes from: subscribe now."""
        self._go.set()

    async def _connect(self) -> Any:
        """The provider's connection, with every chunk it receives counted as activity."""
        conn = await self.provider._connect()
        received = getattr(conn, "data_received", None)
        if callable(received):  # an asyncio protocol (a websockets connection)

            def data_received(data: bytes) -> None:
                self._last = time.monotonic()
                received(data)

            conn.data_received = data_received
        return conn

    def _check_fatal(self, exc: Exception) -> None:
        if isinstance(exc, MemoryError) and self._on_fatal is not None:
            self._on_fatal(exc)

    async def _lost(self, exc: Exception, connected: bool) -> None:
        state = "disconnected" if connected else "error"
        idle = isinstance(exc, IdleTimeout)
        await self._state(State(state, one_line(exc), idle_timeout=idle))

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
        self._subscribed = False
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5.0)
            except Exception as exc:  # gone either way; the engine hears why
                await self._state(State("closing", f"close failed: {one_line(exc)}"))

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
                    if task is not heartbeat:  # a provider without heartbeat returns at once
                        raise ConnectionError("the feed closed the connection")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self) -> None:
        """Messages the socket already holds are parsed without a suspension, so on a busy
        feed this lets the rest of the loop run every READ_SLICE seconds."""
        parse = self.provider._parse_message
        reading = TimeSlice(READ_SLICE)
        async for message in self._conn:
            self._last = time.monotonic()
            self._pending.messages += 1
            self._wake.set()
            try:
                records = await parse(message)
            except Exception as exc:
                self._check_fatal(exc)
                await self._state(State("bad-message", one_line(exc)))
                continue
            if records:
                self._add(records)
                if self._count >= MAX_PENDING:
                    self._room.clear()
                    await self._room.wait()
            if reading.due():
                await asyncio.sleep(0)

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
                self._subs.pop(r.symbol, None)  # not asked for again until the engine adds it
            else:
                continue
            self._count += 1

    async def _state(self, state: State) -> None:
        """Hand on what was read before this state change, then the change."""
        async with self._sending:
            await self._hand_on()
            await self._send(state)

    async def _hand_on(self) -> None:
        batch, self._pending, self._count = self._pending, Live(), 0
        self._room.set()
        if batch.messages or batch.ticks or batch.quotes or batch.bars or batch.refused:
            await self._send(batch)

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            await self._wake.wait()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wake.clear()
            async with self._sending:
                await self._hand_on()
            due = loop.time() + HAND_ON_EVERY

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


class LocalFeed:
    """`LiveFeed` in this process, for a provider instance the caller made itself: the same
    loop the host runs, with a bounded queue where the host has its pipe."""

    def __init__(
        self,
        provider: LiveDataProvider,
        *,
        backoff: Backoff | None = None,
        healthy_after: float = HEALTHY_AFTER,
    ) -> None:
        self._queue: asyncio.Queue[Msg] = asyncio.Queue(LOCAL_QUEUE)
        self._feed = LiveFeed(
            provider, self._queue.put, backoff=backoff, healthy_after=healthy_after
        )

    async def set_subscriptions(self, subs: dict[str, list[Interval]]) -> None:
        await self._feed.set_subscriptions(subs)

    async def events(self) -> AsyncIterator[Live | State]:
        while True:
            item = await self._queue.get()
            assert isinstance(item, Live | State)  # all a feed sends
            yield item

    async def observing(self) -> None:
        self._feed.observing()

    async def close(self) -> None:
        await self._feed.stop(report=False)
