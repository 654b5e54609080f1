"""Console fixtures: a real app over the real test database, with or without its own engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.database import Database
from quasar_tui.tui.app import QuasarApp
from quasar_tui.tui.demo import seed_demo
from quasar_tui.tui.services import ConsoleOptions, Say, Services

QUIET = ConsoleOptions(animation=False, clock=False)


@pytest.fixture
def make_console(db: Database, tmp_path: Path) -> Callable[..., QuasarApp]:
    """`make_console(run_engine=True, options=QUIET)`: the app the user gets, on the `db`."""

    def make(*, run_engine: bool = True, options: ConsoleOptions = QUIET) -> QuasarApp:
        @asynccontextmanager
        async def open_services(say: Say) -> AsyncIterator[Services]:
            async with Services.running(db, tmp_path, run_engine=run_engine, say=say) as services:
                yield services

        return QuasarApp(open_services, options)

    return make


@pytest.fixture
def seeded(db: Database, tmp_path: Path) -> Callable[..., Awaitable[list[str]]]:
    """The demo's data: SIMULATED registered, its assets listed, everything subscribed live;
    of the historical subscriptions only `history` ((symbol, interval) pairs) stay enabled,
    since simulated history is CPU work that tests not about charts do not need."""

    async def seed(history: Collection[tuple[str, str]] = ()) -> list[str]:
        symbols = await seed_demo(db, tmp_path)
        store = SubscriptionStore(db)
        idle = [
            s.id
            for s in await store.list()
            if s.mode == "historical" and (s.symbol, s.interval) not in history
        ]
        await store.set_enabled(idle, False)
        return symbols

    return seed
