"""A loopback webhook receiver: records every POST (body, headers, when) and answers with the
statuses queued by `fail_next`, then 200."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    body: bytes
    headers: dict[str, str]
    at: float  # time.time() when it arrived
    status: int

    @property
    def alert(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/hook", self._hook)
        self._statuses: deque[int] = deque()
        self._runner: web.AppRunner | None = None
        self.arrived = asyncio.Event()

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(self, *statuses: int) -> None:
        self._statuses.extend(statuses)

    def stop_failing(self) -> None:
        """Answer 200 from now on, whatever `fail_next` queued."""
        self._statuses.clear()

    @property
    def delivered(self) -> list[Received]:
        """The POSTs answered 2xx: the alerts that got through."""
        return [r for r in self.received if r.status < 300]

    async def _hook(self, request: web.Request) -> web.Response:
        status = self._statuses.popleft() if self._statuses else 200
        body = await request.read()
        self.received.append(Received(body, dict(request.headers), time.time(), status))
        self.arrived.set()
        return web.Response(status=status, text="ok" if status < 300 else "no")
