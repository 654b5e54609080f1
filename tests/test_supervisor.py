"""Drill: `kill -9` of the embedded postmaster under a running `quasar --daemon`.

The daemon restarts the server, every simulated trade lands exactly once (trade ids stay
contiguous), the daemon stays nearly idle while the server cannot come back, it logs one line
per state change, and the server stops with the daemon.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from helpers import requires_embedded

from quasar_tui.store.embedded import EmbeddedServer, Postmaster, read_postmaster

pytestmark = requires_embedded

DOWN_FOR = 6.0  # seconds the restart is held back (the test holds the data dir's lock)
CPU_SHARE = 0.05  # of one core, at most, while the daemon waits for the server


def quasar(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "quasar_tui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The environment of a `quasar` on the embedded server of `data_dir`."""
    env = {k: v for k, v in os.environ.items() if k != "QUASAR_DSN"}
    env["QUASAR_DATA_DIR"] = str(data_dir)
    return env


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "quasar_tui", "--daemon"], env=env, stderr=err
        )


def text_of(log: Path) -> str:
    return log.read_text()


async def until(check: Callable[[], Awaitable[Any]], what: str, log: Path) -> Any:
    for _ in range(600):
        if value := await check():
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached within 60 s: {what}\n{text_of(log)}")


async def test_killed_postmaster_is_restarted_and_no_trade_is_lost_or_doubled(
    server_root: Path, tmp_path: Path
) -> None:
    data_dir = server_root / "supervised"
    env = embedded_env(data_dir)
    quasar(env, "provider", "set", "SIMULATED", "ticks_per_second=5")
    quasar(env, "assets", "refresh", "SIMULATED")
    quasar(env, "subscribe", "SIMULATED", "ACME", "GLOBEX", "--interval", "1min", "--live")

    log = tmp_path / "daemon.log"
    daemon = start_daemon(env, log)
    server = EmbeddedServer(data_dir)  # only to name the DSN: this test is not a user of it

    async def ticks() -> int:
        postmaster = server.running()
        if postmaster is None:
            return 0
        try:
            conn = await asyncpg.connect(server.dsn(postmaster, "quasar"))
        except (OSError, asyncpg.CannotConnectNowError):  # still starting or stopping
            return 0
        try:
            return await conn.fetchval("SELECT count(*) FROM live_ticks")
        finally:
            await conn.close()

    try:
        await until(ticks, "the first ticks stored", log)
        first = read_postmaster(data_dir / "pg")
        assert first is not None
        proc = psutil.Process(daemon.pid)
        with (data_dir / "pg.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the supervisor cannot restart the server yet
            os.kill(first.pid, signal.SIGKILL)
            began, cpu_before = time.monotonic(), sum(proc.cpu_times()[:2])
            await asyncio.sleep(DOWN_FOR)
            used = sum(proc.cpu_times()[:2]) - cpu_before
            waited = time.monotonic() - began
        assert used < CPU_SHARE * waited, f"{used:.2f} s of CPU in {waited:.1f} s down"

        async def restarted_and_collecting() -> bool:
            again = server.running()
            return again is not None and again.pid != first.pid and await ticks() > before

        before = 0
        await until(restarted_and_collecting, "the server restarted", log)
        before = await ticks()
        await until(restarted_and_collecting, "new ticks after the restart", log)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, text_of(log)

        # The last user is gone: the server stopped with it.
        assert server.running() is None, "the embedded server outlived the daemon"
        server.start()
        try:
            conn = await asyncpg.connect(server.dsn(server.running(), "quasar"))
            try:
                rows = await conn.fetch(
                    """SELECT symbol, count(*) AS n, count(DISTINCT seq) AS distinct_seq,
                              max(seq) - min(seq) + 1 AS span
                       FROM live_ticks GROUP BY symbol ORDER BY symbol"""
                )
            finally:
                await conn.close()
        finally:
            server.release()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)

    assert [r["symbol"] for r in rows] == ["ACME", "GLOBEX"]
    for r in rows:
        assert r["n"] == r["distinct_seq"] == r["span"], dict(r)  # none lost, none twice
    text = text_of(log)
    assert text.count("stopped unexpectedly") == 1, text
    assert text.count("running again") == 1, text
    assert "Traceback" not in text


async def test_the_server_stops_when_its_last_user_is_killed(
    server_root: Path, tmp_path: Path
) -> None:
    """kill -9 of the only process using the server: its watcher stops the server."""
    data_dir = server_root / "orphan"
    env = embedded_env(data_dir)
    quasar(env, "db", "info")  # made and migrated; the server stopped with the command
    server = EmbeddedServer(data_dir)
    assert server.running() is None
    log = tmp_path / "daemon.log"
    daemon = start_daemon(env, log)
    try:

        async def up() -> Postmaster | None:
            return server.running()

        postmaster = await until(up, "the server started", log)
        daemon.kill()
        daemon.wait(timeout=30)

        async def stopped_and_unwatched() -> bool:
            watchers = [
                p
                for p in psutil.process_iter(["cmdline"])
                if str(data_dir) in (p.info["cmdline"] or [])
            ]
            return not psutil.pid_exists(postmaster.pid) and not watchers

        await until(stopped_and_unwatched, "the orphaned server and its watcher gone", log)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
