"""The loopback Binance aggTrade feed (tests/fakes/binance.py) in a process of its own, so that
making and sending trades does not compete with the client measured for the benchmark's core."""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection
from pathlib import Path

from bench.fakes_path import binance
from bench.feed_process import FeedChild


async def _serve(conn: Connection, count: int, tls: tuple[Path, Path] | None) -> None:
    fake = binance.BinanceFake(count, tls=tls)
    conn.send(await fake.start())
    try:
        while True:
            command, *args = await asyncio.to_thread(conn.recv)
            if command == "following":
                conn.send(fake.following())
            elif command == "pump":
                conn.send(await fake.pump(*args))
            else:
                break
    finally:
        await fake.stop()


def _child(conn: Connection, count: int, tls: tuple[Path, Path] | None) -> None:
    asyncio.run(_serve(conn, count, tls))


class BinanceFeedProcess(FeedChild):
    """The parent's handle on the feed process; every call is awaitable."""

    def __init__(self, count: int, tls: tuple[Path, Path] | None = None) -> None:
        super().__init__(_child, (count, tls), "binance-feed")

    async def following(self) -> int:
        """How many streams the connected clients follow."""
        return int(await self.ask("following"))

    async def pump(self, rate: float, duration: float) -> binance.PumpReport:
        return await self.ask("pump", rate, duration)
