"""A real API server on loopback for tests and benches: uvicorn in this process, an ephemeral
port, real httpx and websockets clients."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from quasar_tui.engine.events import EventBus
from quasar_tui.registry.apikeys import ApiKeyStore
from quasar_tui.registry.secrets import Keyring
from quasar_tui.serve.app import ServeOptions, Services, create_app
from quasar_tui.serve.bind import Bind
from quasar_tui.serve.server import start_server
from quasar_tui.store.database import Database


@dataclass
class Api:
    http: httpx.AsyncClient
    keys: ApiKeyStore
    services: Services
    port: int
    key: str  # read and stream, the default rate

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"X-API-Key": key or self.key}


@asynccontextmanager
async def running_api(
    db: Database, options: ServeOptions | None = None, *, events: EventBus | None = None
) -> AsyncIterator[Api]:
    keyring = Keyring(os.urandom(32))
    app = create_app(db, keyring, options or ServeOptions(cache_ttl=60.0), events=events)
    server = await start_server(app, Bind("127.0.0.1", 0))
    services: Services = app.state.services
    try:
        await asyncio.wait_for(services.listener.listening.wait(), 10)
        keys = ApiKeyStore(db, keyring)
        _, key = await keys.create(f"tester-{server.port}", ["read", "stream"], rate=100_000)
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield Api(http, keys, services, server.port, key)
    finally:
        await server.stop()
