"""One embedded PostgreSQL per test session; each test gets its own migrated database.

Databases are cloned from a migrated template, ahead of the tests that take them (`Clones`);
the session's own server runs without fsync and clones by file copy, which makes cloning and
dropping cheap (a crash of the machine, the only thing fsync guards against, ends the session
anyway).
`QUASAR_TEST_DSN=postgresql://...` runs the suite on that server instead (for instance one with
TimescaleDB): the session makes its own template and test databases there and drops them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from helpers import EXTERNAL_DSN, stop_server

from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.store import migrations
from quasar_tui.store.database import Database, with_database
from quasar_tui.store.server import ServerInfo, start_embedded

# One template per session, so sessions (or workers) sharing an external server never collide.
TEMPLATE = f"quasar_template_{uuid.uuid4().hex[:12]}"
IN_USE_WAIT = 30.0  # seconds to wait while a background worker is connected to the template


async def _admin_execute(dsn: str, statement: str) -> None:
    """Run CREATE/DROP DATABASE, retrying while another session holds the source database
    (TimescaleDB's background workers connect to every database, the template included)."""
    admin = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        for _ in range(int(IN_USE_WAIT / 0.2)):
            try:
                await admin.execute(statement)
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.2)
        await admin.execute(statement)
    finally:
        await admin.close()


async def _build_template(dsn: str) -> None:
    await _admin_execute(dsn, f"CREATE DATABASE {TEMPLATE}")
    conn = await asyncpg.connect(with_database(dsn, TEMPLATE))
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()
    # No new sessions on the template (background workers included), so cloning it is not
    # refused while one is connected.
    await _admin_execute(dsn, f"ALTER DATABASE {TEMPLATE} WITH ALLOW_CONNECTIONS false")


@pytest.fixture(scope="session")
def server_root() -> Path:
    """A directory the embedded server's own system user can reach.

    Not pytest's tmp_path: pytest resets its temp root to mode 0700 whenever a session starts,
    which locks the server (running as another user when tests run as root) out of its data.
    """
    root = Path(tempfile.mkdtemp(prefix="quasar-tests-"))
    root.chmod(0o755)
    # Removed at exit, after the servers stop: atexit runs in reverse order of registration.
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


async def _without_fsync(dsn: str) -> None:
    """The session server skips flushing to disk: every test's CREATE and DROP DATABASE
    checkpoints, which with fsync costs a second on a busy machine."""
    admin = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        await admin.execute("ALTER SYSTEM SET fsync = off")
        await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_server(server_root: Path) -> Iterator[ServerInfo]:
    if EXTERNAL_DSN is not None:
        info = ServerInfo(dsn=EXTERNAL_DSN, embedded=False)
    else:
        info = start_embedded(server_root / "session")
        asyncio.run(_without_fsync(info.dsn))
    try:
        asyncio.run(_build_template(info.dsn))
        yield info
        asyncio.run(_admin_execute(info.dsn, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))
    finally:
        stop_server(info)


async def create_test_database(server: ServerInfo) -> str:
    """A fresh migrated database; returns its DSN. The embedded server (PostgreSQL 18) copies
    the template's files, which without fsync is several times faster than the default
    WAL-logged copy; an external server may predate STRATEGY (PostgreSQL 15)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    strategy = " STRATEGY FILE_COPY" if server.embedded else ""
    await _admin_execute(server.dsn, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}{strategy}")
    return with_database(server.dsn, name)


async def drop_test_database(server: ServerInfo, dsn: str) -> None:
    name = urlsplit(dsn).path.lstrip("/")
    await _admin_execute(server.dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Clones:
    """Test databases cloned ahead and dropped behind, in one worker thread: a test takes a
    database that is ready while the next one is copied, and does not wait for its drop."""

    AHEAD = 2

    def __init__(self, server: ServerInfo) -> None:
        self._server = server
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="test-databases")
        self._next = deque(self._clone() for _ in range(self.AHEAD))

    def _clone(self) -> Future[str]:
        return self._worker.submit(asyncio.run, create_test_database(self._server))

    def take(self) -> str:
        """A fresh migrated database's DSN (blocks until one is ready)."""
        ready = self._next.popleft()
        self._next.append(self._clone())
        return ready.result()

    def discard(self, dsn: str) -> None:
        self._worker.submit(asyncio.run, drop_test_database(self._server, dsn))

    def close(self) -> None:
        """Drop the databases no test took, and wait for every drop."""
        for ready in self._next:
            with contextlib.suppress(Exception):
                self.discard(ready.result())
        self._worker.shutdown(wait=True)


@pytest.fixture(scope="session")
def clones(pg_server: ServerInfo) -> Iterator[Clones]:
    ahead = Clones(pg_server)
    yield ahead
    ahead.close()


@pytest.fixture
async def test_dsn(clones: Clones) -> AsyncIterator[str]:
    dsn = await asyncio.to_thread(clones.take)
    yield dsn
    clones.discard(dsn)


@pytest.fixture
async def db(test_dsn: str) -> AsyncIterator[Database]:
    database = await Database.open(ServerInfo(dsn=test_dsn, embedded=False))
    yield database
    await database.close()


@pytest.fixture
def quasar_env(tmp_path: Path, test_dsn: str) -> dict[str, str]:
    """Environment for running the `quasar` command against the test database."""
    env = dict(os.environ)
    env["QUASAR_DSN"] = test_dsn
    env["QUASAR_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.fixture
def registry(db: Database, quasar_env: dict[str, str]) -> ProviderRegistry:
    """The provider registry over `db`, keyed like the `quasar` commands `run_quasar` runs."""
    return ProviderRegistry(db, Keyring.load_or_create(Path(quasar_env["QUASAR_DATA_DIR"])))


@pytest.fixture
def run_quasar(quasar_env: dict[str, str]):
    """Run `quasar ARGS...` as a user would; returns the CompletedProcess."""

    def run(*args: str, input: str | None = None, check: bool = False):  # noqa: A002 - as subprocess.run
        return subprocess.run(
            [sys.executable, "-m", "quasar_tui", *args],
            env=quasar_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    return run
