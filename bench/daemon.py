"""The real `quasar --daemon` as a subprocess of a benchmark, on its own database.

Market time: bars are 1min, so drills run the daemon's market clock fast the way
tests/test_daemon.py does. The launcher below runs the CLI entry point after patching
`time.time` (and the engine's `utc_now`) to `anchor + (real - anchor) * speed` when
QUASAR_TEST_SPEED is set; every restarted daemon gets the same anchor, so it continues the same
timeline, and `MarketClock` gives the benchmark process the same reading for the fakes it
serves. Only the clock the engine reads for bars, gap fills and historical planning is sped
up: sockets, backoff, the writer's flush timer and APScheduler keep real time.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench.fakes_path import launcher
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.store.database import Database, with_database
from quasar_tui.store.server import ServerInfo

#: Errors of a query made while the database restarts; the benchmark's own reads retry them.
DB_DOWN = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


HOSTS_DIE_WITHIN = 5.0


def running(process: psutil.Process) -> bool:
    """Still running: neither gone (its pid maybe reused) nor a zombie no one has reaped yet
    (an orphan's new parent in a container may never reap it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class DrillError(RuntimeError):
    """A drill could not run to its end (a daemon died, a condition was never reached)."""


@dataclass(frozen=True)
class MarketClock:
    """Market time shared with the daemons: `speed` market seconds per real second."""

    anchor: float
    speed: float = 1.0

    @classmethod
    def starting_now(cls, speed: float) -> MarketClock:
        return cls(time.time(), speed)

    def timestamp(self) -> float:
        return self.anchor + (time.time() - self.anchor) * self.speed

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def real(self, market_seconds: float) -> float:
        """How many real seconds `market_seconds` of market time take."""
        return market_seconds / self.speed

    def env(self) -> dict[str, str]:
        if self.speed == 1:
            return {}
        return {"QUASAR_TEST_SPEED": repr(self.speed), "QUASAR_TEST_ANCHOR": repr(self.anchor)}


class Daemon:
    """One `quasar --daemon --dsn ...` process; its stderr goes to a log file."""

    def __init__(self, dsn: str, data_dir: Path, log: Path, clock: MarketClock) -> None:
        self.log = log
        env = {**os.environ, "QUASAR_DATA_DIR": str(data_dir), **clock.env()}
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", launcher.LAUNCHER, "--daemon", "--dsn", dsn],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def processes(self) -> list[psutil.Process]:
        """The daemon and what it started: its provider hosts run the providers' code, so
        their memory and CPU are the daemon's too."""
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    async def stop(self) -> int:
        """SIGTERM (the daemon flushes its writer first); return the exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, 120)

    async def kill(self) -> int:
        """SIGKILL: no flush, no goodbye. Return how many of its provider hosts still run
        `HOSTS_DIE_WITHIN` seconds later: they must die with it (parent-death signal)."""
        hosts = self.processes()[1:] if self.alive() else []
        if self.alive():
            self.proc.kill()
        await asyncio.to_thread(self.proc.wait, 30)
        await until(
            lambda: not any(map(running, hosts)),
            "the hosts gone",
            HOSTS_DIE_WITHIN,
            required=False,
        )
        return sum(map(running, hosts))

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


async def until(
    check: Callable[[], Any],
    what: str,
    seconds: float,
    daemon: Daemon | None = None,
    *,
    required: bool = True,
) -> Any:
    """Poll `check` (plain or async) until it returns something truthy and return that. After
    `seconds` real seconds raise DrillError, or return None when not `required` (the
    comparison at the end then shows what is missing). A daemon that exits meanwhile is always
    an error."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if daemon is not None and not daemon.alive():
            raise DrillError(
                f"the daemon exited ({daemon.proc.returncode}) before {what}:\n{daemon.tail()}"
            )
        if time.monotonic() > deadline:
            if not required:
                return None
            tail = f":\n{daemon.tail()}" if daemon is not None else ""
            raise DrillError(f"not reached within {seconds:g} s: {what}{tail}")
        await asyncio.sleep(0.1)


class Site:
    """One database on the benchmark's embedded server, the data dir holding its master key,
    and the registry; the daemons it starts share both."""

    def __init__(self, db: Database, data_dir: Path, registry: ProviderRegistry) -> None:
        self.db = db
        self.data_dir = data_dir
        self.registry = registry
        self.daemons: list[Daemon] = []

    @classmethod
    async def open(cls, server: Database, name: str) -> Site:
        """A new migrated database `name` beside `server`'s, with the bundled providers."""
        assert server.server.data_dir is not None, "benchmarks run on an embedded server"
        data_dir = server.server.data_dir / name
        data_dir.mkdir()
        info = ServerInfo(with_database(server.dsn, name), embedded=True, data_dir=data_dir)
        db = await Database.open(info, min_size=0)  # no pool floor to restore in an outage
        registry = ProviderRegistry(db, Keyring.load_or_create(data_dir))
        await registry.ensure_bundled()
        return cls(db, data_dir, registry)

    def start_daemon(self, clock: MarketClock) -> Daemon:
        log = self.data_dir / f"daemon{len(self.daemons)}.log"
        daemon = Daemon(self.db.dsn, self.data_dir, log, clock)
        self.daemons.append(daemon)
        return daemon

    async def refresh_assets(self, provider: str) -> None:
        instance = await self.registry.load(provider)
        try:
            await AssetStore(self.db).refresh(provider, instance)
        finally:
            await instance.aclose()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """A read that waits out a database restart (up to a minute)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return await self.db.fetch(query, *args)
            except DB_DOWN:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def fetchval(self, query: str, *args: Any) -> Any:
        rows = await self.fetch(query, *args)
        return rows[0][0] if rows else None

    async def close(self, keep_logs: Path | None = None) -> None:
        """Kill what still runs; with `keep_logs`, copy the daemons' logs there first."""
        for daemon in self.daemons:
            await daemon.kill()
        if keep_logs is not None:
            self._save_logs(keep_logs)
        await self.db.close()

    def _save_logs(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for daemon in self.daemons:
            shutil.copy(daemon.log, folder / f"{self.data_dir.name}-{daemon.log.name}")
