"""A Kraken WebSocket v2 feed at full speed, in a process of its own, for benchmarks.

The tests' fakes do the protocol: `KrakenWSFake` answers subscriptions and pings and sends
heartbeats, `KrakenRestFake` serves AssetPairs and the OHLC gap fills. `BulkKrakenWS.pump` adds
what no test needs: trades for every subscribed pair, several per message as Kraken batches the
fills of one taker order, encoded from precomputed fragments and sent as fast as the engine
takes them. It runs in its own process so that making trades does not compete with the engine
for a core.

"As fast as the engine takes them" is end to end: the pump keeps at most `window` trades in
flight, sent but not yet committed to live_ticks (the benchmark counts commits into a shared
counter). TCP backpressure alone would let the kernel's socket buffers (tens of MB once
autotuned, holding deflate-compressed frames) queue tens of seconds of trades, and the
benchmark would measure the size of those buffers rather than the engine.

A trade is a pure function of (pair number, trade id) (`trade_values`), so the benchmark can
rebuild every served trade from the per-minute trade id ranges the pump reports, without the
pump shipping millions of trades back.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized

from bench.fakes_path import kraken_rest, kraken_ws
from bench.feed_process import FeedChild

PATTERN = 256  # trade id n uses entry n % PATTERN of its pair's prices and sizes
_MINUTE_US = 60_000_000
WINDOW_WAIT = 0.001  # seconds between looks at the commit counter while the window is full


def pair_symbol(index: int) -> str:
    return f"Q{index:03d}/USD"


def pairs(count: int) -> dict[str, tuple[str, str, str, str]]:
    """REST AssetPairs entries: key -> (altname, wsname, base, quote)."""
    return {
        f"Q{i:03d}ZUSD": (f"Q{i:03d}USD", pair_symbol(i), f"Q{i:03d}", "ZUSD") for i in range(count)
    }


def trade_values(index: int) -> tuple[list[float], list[float]]:
    """Prices and sizes of pair `index`'s trades, PATTERN of each."""
    base = 20.0 + index * 3.0
    prices = [round(base * (1 + 0.01 * math.sin(k / 9.0)), 4) for k in range(PATTERN)]
    sizes = [round(0.001 + (k * 37 % 500) / 250, 4) for k in range(PATTERN)]
    return prices, sizes


@dataclass
class PumpReport:
    """What the pump sent. `ranges[(pair, minute)]` is the [first, last] trade id it sent for
    that pair stamped within that minute (epoch minutes); ids run from 1, one by one."""

    messages: int = 0
    trades: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    waits: int = 0  # looks at a full window: the engine, not the pump, set the pace
    ranges: dict[tuple[int, int], list[int]] = field(default_factory=dict)


class _Stamp:
    """RFC 3339 timestamps with microseconds, cheaply: the minute's prefix is kept."""

    def __init__(self) -> None:
        self.minute = -1
        self.prefix = ""

    def at(self, micros: int) -> tuple[int, str]:
        minute, rest = divmod(micros, _MINUTE_US)
        if minute != self.minute:
            self.minute = minute
            self.prefix = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
        seconds, fraction = divmod(rest, 1_000_000)
        return minute, f"{self.prefix}{seconds:02d}.{fraction:06d}Z"


def _fragments(index: int) -> list[str]:
    """Each trade item of pair `index` up to its trade id, for every entry of the pattern."""
    symbol = pair_symbol(index)
    prices, sizes = trade_values(index)
    return [
        f'{{"symbol":"{symbol}","side":"{"buy" if k % 2 else "sell"}","price":{prices[k]!r},'
        f'"qty":{sizes[k]!r},"ord_type":"limit","trade_id":'
        for k in range(PATTERN)
    ]


class BulkKrakenWS(kraken_ws.KrakenWSFake):
    """The tests' Kraken WebSocket fake plus a trade pump for one subscribed client."""

    async def wait_all_subscribed(self, symbols: list[str]) -> None:
        for symbol in symbols:
            await self.wait_subscribed(symbol)

    async def pump(
        self,
        count: int,
        committed: Synchronized,
        start: float,
        duration: float,
        batch: int,
        window: int,
    ) -> PumpReport:
        """From wall time `start` for `duration` seconds, send `batch` trades a message to the
        client subscribed to the trades of pairs 0..count-1, pair after pair, while fewer than
        `window` trades are in flight (sent minus `committed`)."""
        [client] = self._subscribers("trade", pair_symbol(0))
        fragments = [_fragments(i) for i in range(count)]
        next_id = [1] * count
        report = PumpReport()
        ranges = report.ranges
        stamp = _Stamp()
        send = client.conn.send
        await asyncio.sleep(max(0.0, start - time.time()))
        end = int((start + duration) * 1e6)
        report.first_send = time.time()
        running = True
        sent = 0
        while running:
            for i in range(count):
                while sent - committed.value >= window:
                    report.waits += 1
                    await asyncio.sleep(WINDOW_WAIT)
                micros = int(time.time() * 1e6)
                if micros >= end:
                    running = False
                    break
                minute, ts = stamp.at(micros)
                tail = f',"timestamp":"{ts}"}}'
                first = next_id[i]
                last = first + batch - 1
                next_id[i] = last + 1
                pair = fragments[i]
                items = ",".join(
                    [pair[n % PATTERN] + str(n) + tail for n in range(first, last + 1)]
                )
                await send('{"channel":"trade","type":"update","data":[' + items + "]}")
                span = ranges.get((i, minute))
                if span is None:
                    ranges[(i, minute)] = [first, last]
                else:
                    span[1] = last
                report.messages += 1
                sent += batch
            client.last_sent = time.monotonic()  # no heartbeats needed while trading
        report.last_send = time.time()
        report.trades = report.messages * batch
        return report


async def _serve(conn: Connection, count: int, committed: Synchronized) -> None:
    market = kraken_ws.KrakenMarket(lambda: datetime.now(UTC), pairs=pairs(count))
    ws = BulkKrakenWS(market)
    rest = kraken_rest.KrakenRestFake(market)
    conn.send((await ws.start(), await rest.start()))
    try:
        while True:
            command, *args = await asyncio.to_thread(conn.recv)
            if command == "subscribed":
                await ws.wait_all_subscribed([pair_symbol(i) for i in range(count)])
                conn.send(True)
            elif command == "pump":
                conn.send(await ws.pump(count, committed, *args))
            else:
                break
    finally:
        await ws.stop()
        await rest.stop()


def _child(conn: Connection, count: int, committed: Synchronized) -> None:
    asyncio.run(_serve(conn, count, committed))


class FeedProcess(FeedChild):
    """The parent's handle on the feed process; every call is awaitable from the engine's loop.
    Add the trades committed to live_ticks to `committed.value` as they are committed."""

    def __init__(self, count: int) -> None:
        self.committed: Synchronized = multiprocessing.get_context("spawn").Value(
            "q", 0, lock=False
        )
        super().__init__(_child, (count, self.committed), "kraken-feed")

    async def subscribed(self) -> None:
        """Until the client is subscribed to the trades of every pair."""
        await self.ask("subscribed")

    async def pump(self, start: float, duration: float, batch: int, window: int) -> PumpReport:
        return await self.ask("pump", start, duration, batch, window)
