"""Running the API on uvicorn in the current event loop: standalone or inside the engine.

`start_server` returns once the socket listens (port 0 picks a free one); `serve` runs until
SIGINT/SIGTERM (standalone) or until cancelled (inside the daemon, whose signals stay its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from quasar_tui.core.errors import QuasarError
from quasar_tui.serve.bind import Bind

log = logging.getLogger("quasar.serve")


class ServeError(QuasarError):
    """The server cannot start (address in use, bad TLS files)."""


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the caller decides how the server stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningServer:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


def listening_socket(bind: Bind) -> socket.socket:
    """Bound here rather than by uvicorn, so a busy port is an error the caller can report."""
    try:
        family = socket.getaddrinfo(bind.host, bind.port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((bind.host, bind.port), family=family)
    except OSError as exc:
        raise ServeError(
            f"cannot listen on {bind.host}:{bind.port}: {exc.strerror or exc}"
        ) from None
    # Connections inherit it: a response's head and body go out at once, with no wait for the
    # client's delayed ACK (40 ms per small answer otherwise).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


async def start_server(app: FastAPI, bind: Bind) -> RunningServer:
    """Listen on `bind` and return once the app has started (or raise why it could not)."""
    config = uvicorn.Config(
        app,
        host=bind.host,
        port=bind.port,
        ssl_certfile=str(bind.tls_cert) if bind.tls_cert else None,
        ssl_keyfile=str(bind.tls_key) if bind.tls_key else None,
        access_log=False,  # the app logs one JSON line per request itself
        log_config=None,
        server_header=False,
        lifespan="on",
        ws="websockets-sansio",
    )
    sock = listening_socket(bind)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="quasar-serve")
    try:
        while not server.started:
            if task.done():
                sock.close()
                problem = task.exception() if not task.cancelled() else None
                raise ServeError(
                    f"the server did not start: {problem or 'stopped during start-up'}"
                )
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:  # cancelled while starting: stop what was started
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        raise
    return RunningServer(server, task, sock.getsockname()[1])


async def serve(app: FastAPI, bind: Bind, *, handle_signals: bool = True) -> None:
    """Run until SIGINT/SIGTERM (when `handle_signals`) or until cancelled."""
    running = await start_server(app, bind)
    scheme = "https" if bind.tls else "http"
    log.info("serving the API on %s://%s:%d", scheme, bind.host, running.port)
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(running.server, "should_exit", True))
    try:
        await asyncio.shield(running.task)
    finally:
        if not running.task.done():
            await running.stop()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
