"""One JSON log line per request, the request id echoed as X-Request-ID, and request metrics.

A pure ASGI middleware (no per-request task or body buffering). The key's name comes from the
scope, where the auth check leaves it; the key itself never reaches a log.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quasar_tui.serve.metrics import ServerMetrics

log = logging.getLogger("quasar.serve.access")

KEY_NAME = "quasar.key_name"
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_encoder = msgspec.json.Encoder()


def request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is a sane token, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _GOOD_ID.match(text):
                return text
    return secrets.token_hex(8)


def route_of(scope: Scope) -> str:
    """The route's path template (`/v1/bars`), so metrics do not grow with query strings."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        scope["quasar.request_id"] = rid
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif kind == "websocket.accept":
                status = 101
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif kind == "websocket.close" and status == 500:
                status = 403  # closed before accepting: refused
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            if scope["type"] == "http":
                self.metrics.observe(route, status, seconds)
            self._log(scope, rid, route, status, seconds)

    @staticmethod
    def _log(scope: Scope, rid: str, route: str, status: int, seconds: float) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        line: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": rid,
            "method": scope.get("method", "WS"),
            "route": route,
            "path": scope.get("path"),
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "key": scope.get(KEY_NAME),
            "client": client[0] if client else None,
        }
        log.info(_encoder.encode(line).decode("utf-8"))


def configure_logging(level: int = logging.INFO) -> None:
    """Request lines to stderr as they are (JSON objects); other lines as plain text."""
    access = logging.StreamHandler()
    access.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [access]
    log.propagate = False
    text = logging.StreamHandler()
    text.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [text]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "asyncio", "websockets"):
        logging.getLogger(name).setLevel(logging.WARNING)
