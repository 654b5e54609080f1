"""A loopback aiohttp server for fake REST APIs: a request log and fault injection.

Faults are queued and consumed one per matching request, in order: answer with a status (429
with `Retry-After`, 5xx), stall before answering, or drop the connection without an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    path: str
    query: dict[str, str]
    at: float
    status: int = 200


@dataclass
class Fault:
    kind: str  # "status" | "stall" | "drop"
    path: str = ""
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    remaining: int = 1


@dataclass
class FakeHttpServer:
    """Routes GET handlers on 127.0.0.1 at a free port; `base_url` once started."""

    requests: list[Seen] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware])
        self._faults: deque[Fault] = deque()
        self._runner: web.AppRunner | None = None

    def route(self, path: str, handler: Handler) -> None:
        self.app.router.add_get(path, handler)

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- faults ---------------------------------------------------------------------------

    def fail_next(
        self, count: int, status: int = 500, *, retry_after: float | None = None, path: str = ""
    ) -> None:
        """Answer the next `count` requests under `path` with `status` (and Retry-After)."""
        self._faults.append(Fault("status", path, status, retry_after, remaining=count))

    def stall_next(self, count: int, seconds: float, *, path: str = "") -> None:
        """Hold the next `count` requests for `seconds` before answering normally."""
        self._faults.append(Fault("stall", path, seconds=seconds, remaining=count))

    def drop_next(self, count: int, *, path: str = "") -> None:
        """Close the connection of the next `count` requests without any answer."""
        self._faults.append(Fault("drop", path, remaining=count))

    def count(self, path: str = "") -> int:
        """Requests seen under `path`, faulted ones included."""
        return sum(1 for r in self.requests if r.path.startswith(path))

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self._faults:
            if path.startswith(fault.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self._take_fault(request.path)
        seen = Seen(request.path, dict(request.query), time.monotonic())
        if fault is not None and fault.kind == "status":
            self.requests.append(Seen(seen.path, seen.query, seen.at, fault.status))
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return web.json_response(
                {"error": f"injected {fault.status}"}, status=fault.status, headers=headers
            )
        if fault is not None and fault.kind == "drop":
            self.requests.append(Seen(seen.path, seen.query, seen.at, 0))
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        if fault is not None and fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
        response = await handler(request)
        self.requests.append(Seen(seen.path, seen.query, seen.at, response.status))
        return response
