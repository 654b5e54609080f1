"""A benchmark's fake feed in a process of its own, so that making and sending trades does not
compete with the client measured for a core; the parent talks to it over a pipe.

The child's `target(conn, *args)` sends (WebSocket URL, REST URL) once it serves, then answers
each (command, *args) it receives, until ("stop",).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class FeedChild:
    """The parent's handle on a feed process; every call is awaitable."""

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.ws_url = ""
        self.rest_url = ""
        self._conn: Connection
        self._conn, child = context.Pipe()
        self._process = context.Process(target=target, args=(child, *args), name=name, daemon=True)

    @property
    def pid(self) -> int:
        assert self._process.pid is not None, "start() the feed first"
        return self._process.pid

    async def ask(self, *message: Any) -> Any:
        self._conn.send(message)
        return await asyncio.to_thread(self._conn.recv)

    async def start(self) -> None:
        self._process.start()
        self.ws_url, self.rest_url = await asyncio.to_thread(self._conn.recv)

    async def stop(self) -> None:
        if self._process.is_alive():
            self._conn.send(("stop",))
            await asyncio.to_thread(self._process.join, 10)
        if self._process.is_alive():
            self._process.kill()
