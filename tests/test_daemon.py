"""`quasar --daemon` as a real subprocess against the test database: clean shutdown on SIGTERM,
restart after SIGKILL with no gap and no duplicate, the lock, logs, and no Textual."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.eodhd import TOKEN, FakeEodhd
from fakes.launcher import LAUNCHER
from helpers import refresh_assets, until, with_simulated

from quasar_tui.core.intervals import Interval
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.lock import engine_running, engines_waiting, read_owner
from quasar_tui.providers.simulated import SimulatedProvider
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk import ProviderContext
from quasar_tui.store.database import Database

SECRET = "s3cr3t-token-never-logged"
SLOW_TICKS = 0.4  # trades per second: at most 32 a minute, so REST history bars are exact
SPEED = 30.0  # market seconds per real second in the accelerated daemon


class Daemon:
    """One `quasar --daemon` process; stderr goes to a file so it never blocks."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, "--daemon", *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stderr(self) -> str:
        return self.log.read_text()

    def exited(self) -> str | None:
        """Why waiting on this daemon is pointless: it exited (with its stderr), else None."""
        if self.proc.poll() is None:
            return None
        return f"daemon exited ({self.proc.returncode}):\n{self.stderr()}"


@pytest.fixture
async def registry(registry: ProviderRegistry) -> ProviderRegistry:
    """Bundled providers and the simulated provider's assets, with the daemon's master key."""
    return await with_simulated(registry, ticks_per_second=str(SLOW_TICKS))


@pytest.fixture
async def daemons(
    quasar_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: str, **env: str) -> Daemon:
        daemon = Daemon({**quasar_env, **env}, tmp_path / f"daemon{len(started)}.log", *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


async def count(db: Database, query: str, *args: Any) -> int:
    return await db.fetchval(query, *args)


async def test_sigterm_flushes_everything_and_exits_0_without_textual(
    db: Database,
    registry: ProviderRegistry,
    daemons: Callable[..., Daemon],
    tmp_path: Path,
    run_quasar: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    await registry.set_secrets("SIMULATED", {"api_token": SECRET})
    store = SubscriptionStore(db)
    [live, _] = await store.add("SIMULATED", ["SIM/BTC", "ACME"], "1min", "live")
    [hist] = await store.add("SIMULATED", ["SIM/ETH"], "1h", "historical", lookback_days=1)
    await registry.set_preferences("SIMULATED", {"ticks_per_second": "50"})
    modules = tmp_path / "modules.json"
    daemon = daemons(QUASAR_TEST_MODULES=str(modules))

    await until(
        lambda: count(db, "SELECT count(*) FROM live_ticks"), "ticks stored", give_up=daemon.exited
    )
    await until(lambda: _state(db, hist.id, "ok"), "historical run ok", give_up=daemon.exited)
    assert await count(db, "SELECT count(*) FROM historical_data") >= 23
    await until(lambda: _state(db, live.id, "running"), "live running", give_up=daemon.exited)

    assert daemon.stop(signal.SIGTERM) == 0

    # No engine runs now: what ran reads "stopped" in the CLI, not "running".
    listed = json.loads(run_quasar("subscriptions", "--json", check=True).stdout)
    assert {s["id"]: s["state"] for s in listed}[live.id] == "stopped"
    status = json.loads(run_quasar("status", "--json", check=True).stdout)
    assert status["engine"]["running"] is False
    assert {s["id"]: s["state"] for s in status["subscriptions"]}[live.id] == "stopped"
    assert "running" not in {s["state"] for s in status["subscriptions"]}

    stored = await count(db, "SELECT count(*) FROM live_ticks")
    received = await count(db, "SELECT sum(ticks) FROM live_quotes")
    assert stored == received  # every tick the engine received was written before exit
    gaps = await db.fetch(
        "SELECT symbol, max(seq) - min(seq) + 1 - count(*) AS missing FROM live_ticks "
        "GROUP BY symbol"
    )
    assert {r["symbol"] for r in gaps} == {"SIM/BTC", "ACME"}
    assert all(r["missing"] == 0 for r in gaps)
    assert await db.fetchval("SELECT count(*) FROM engine_status") == 0
    log = daemon.stderr()
    assert "stopped cleanly" in log and "Traceback" not in log
    assert SECRET not in log
    loaded = set(json.loads(modules.read_text()))
    assert "quasar_tui.engine.engine" in loaded
    # Textual only: rich may come with httpx's CLI where click is installed (the test extra's
    # import-linter brings it); the import contracts forbid Quasar's own rich imports.
    assert not [m for m in loaded if m == "textual" or m.startswith("textual.")]


async def _state(db: Database, sub_id: int, state: str) -> bool:
    return (await SubscriptionStore(db).get(sub_id)).state == state


async def test_daemon_refuses_to_start_while_another_engine_runs(
    db: Database, registry: ProviderRegistry, daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    console = Engine(db, registry, SubscriptionStore(db), data_dir=tmp_path, mode="console")
    await console.start()
    try:
        daemon = daemons("--log-format", "json")
        assert await asyncio.to_thread(daemon.proc.wait, 60) == 1
    finally:
        await console.stop()

    lines = [json.loads(line) for line in daemon.stderr().splitlines()]
    assert lines[-1]["level"] == "error"
    assert "already running" in lines[-1]["msg"]
    assert f"console on {socket.gethostname()}:{os.getpid()}" in lines[-1]["msg"]
    assert "--standby" in lines[-1]["msg"]  # the way out of a service manager's restart loop
    assert [line for line in lines if line["level"] == "error"] == [lines[-1]]


async def _no_waiters(db: Database) -> bool:
    return await engines_waiting(db) == 0


async def _owner_mode(db: Database) -> str | None:
    if not await engine_running(db):
        return None
    owner = await read_owner(db)
    return owner.mode if owner else None


async def test_a_standby_daemon_waits_for_the_console_and_takes_over_when_it_quits(
    db: Database, registry: ProviderRegistry, daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    console = Engine(db, registry, SubscriptionStore(db), data_dir=tmp_path, mode="console")
    await console.start()
    try:
        daemon = daemons("--standby")
        await until(
            lambda: "standby:" in daemon.stderr(), "the daemon on standby", give_up=daemon.exited
        )
        assert daemon.proc.poll() is None  # waiting, not refused
        assert await _owner_mode(db) == "console"
    finally:
        await console.stop()  # the console quits

    await until(
        lambda: "engine started (daemon" in daemon.stderr(),
        "the daemon's engine started",
        give_up=daemon.exited,
    )
    assert await _owner_mode(db) == "daemon"
    assert daemon.stop(signal.SIGTERM) == 0
    log = daemon.stderr()
    assert "console on" in log and "stopped cleanly" in log and "ERROR" not in log


async def test_a_standby_daemon_stopped_while_waiting_exits_0_and_leaves_the_console_be(
    db: Database, registry: ProviderRegistry, daemons: Callable[..., Daemon], tmp_path: Path
) -> None:
    console = Engine(db, registry, SubscriptionStore(db), data_dir=tmp_path, mode="console")
    await console.start()
    try:
        daemon = daemons("--standby")
        await until(
            lambda: "standby:" in daemon.stderr(), "the daemon on standby", give_up=daemon.exited
        )
        assert await engines_waiting(db) == 1
        assert daemon.stop(signal.SIGTERM) == 0
        assert await _owner_mode(db) == "console"
        assert console.running
        # Its waiting session leaves the queue: it will never take the lock from a console.
        await until(lambda: _no_waiters(db), "no session waiting for the lock")
    finally:
        await console.stop()
    assert "stopped cleanly on standby" in daemon.stderr()


def reference_bars(symbol: str, start: datetime, end: datetime) -> dict[datetime, tuple]:
    """1-minute bars straight from the simulated market's trades (same seed and rate)."""
    market = SimulatedProvider(ProviderContext(preferences={"ticks_per_second": SLOW_TICKS}))
    bars: dict[datetime, list[Any]] = {}
    for t in market.trades(symbol, start.timestamp(), end.timestamp()):
        key = Interval.M1.floor(t.ts)
        bar = bars.get(key)
        if bar is None:
            bars[key] = [t.price, t.price, t.price, t.price, t.size, 1]
        else:
            bar[1], bar[2], bar[3] = max(bar[1], t.price), min(bar[2], t.price), t.price
            bar[4] += t.size
            bar[5] += 1
    return {k: tuple(v) for k, v in bars.items()}


async def live_bars(db: Database, symbol: str) -> dict[datetime, tuple]:
    rows = await db.fetch(
        "SELECT ts, open, high, low, close, volume, trades FROM live_data "
        "WHERE provider = 'SIMULATED' AND symbol = $1 AND interval = '1min' ORDER BY ts",
        symbol,
    )
    return {r["ts"]: tuple(r)[1:] for r in rows}


async def test_sigkill_and_restart_leave_no_gap_and_no_duplicate_in_live_bars(
    db: Database, registry: ProviderRegistry, daemons: Callable[..., Daemon]
) -> None:
    await SubscriptionStore(db).add("SIMULATED", ["SIM/BTC"], "1min", "live")
    fast = {"QUASAR_TEST_SPEED": str(SPEED), "QUASAR_TEST_ANCHOR": str(time.time())}
    first = daemons(**fast)
    await until(lambda: _bars_at_least(db, 2), "live bars before the kill", give_up=first.exited)

    first.kill()  # SIGKILL: no flush, no goodbye
    killed_at = max(await live_bars(db, "SIM/BTC"))
    second = daemons(**fast)
    await until(
        lambda: _bars_beyond(db, killed_at + timedelta(minutes=2)),
        "live bars well past the kill",
        give_up=second.exited,
    )
    assert second.stop(signal.SIGTERM) == 0

    stored = await live_bars(db, "SIM/BTC")
    stamps = sorted(stored)
    assert stamps == Interval.M1.starts(stamps[0], stamps[-1] + timedelta(minutes=1))
    expected = reference_bars("SIM/BTC", stamps[0], stamps[-1] + timedelta(minutes=1))
    for ts in stamps:
        o, h, lo, c, v, n = stored[ts]
        ro, rh, rlo, rc, rv, rn = expected[ts]
        assert (ts, o, h, lo, c, n) == (ts, ro, rh, rlo, rc, rn)
        assert v == pytest.approx(rv, rel=1e-9, abs=1e-6)


async def _bars_at_least(db: Database, n: int) -> bool:
    return len(await live_bars(db, "SIM/BTC")) >= n


async def _bars_beyond(db: Database, ts: datetime) -> bool:
    bars = await live_bars(db, "SIM/BTC")
    return bool(bars) and max(bars) >= ts


async def historical_rows(db: Database) -> list[tuple]:
    rows = await db.fetch(
        "SELECT ts, open, high, low, close, volume FROM historical_data "
        "WHERE provider = 'EODHD' AND symbol = 'AAPL.US' AND interval = '1min' ORDER BY ts"
    )
    return [tuple(r) for r in rows]


async def test_sigkill_mid_backfill_and_restart_resume_with_no_gap_and_no_duplicate(
    db: Database, registry: ProviderRegistry, daemons: Callable[..., Daemon]
) -> None:
    async with FakeEodhd(symbols=("AAPL.US",)) as eodhd:
        await registry.set_preferences("EODHD", {"base_url": eodhd.base_url})
        await registry.set_secrets("EODHD", {"api_token": TOKEN})
        await refresh_assets(registry, "EODHD")
        # Two chunks (EODHD serves at most 120 days of 1-minute bars per request); the
        # second one is held long enough to kill the daemon while it waits for it.
        eodhd.server.stall_next(1, 0.0, path="/api/intraday")
        eodhd.server.stall_next(1, 5.0, path="/api/intraday")
        [sub] = await SubscriptionStore(db).add(
            "EODHD", ["AAPL.US"], "1min", "historical", lookback_days=122
        )
        first = daemons()
        await until(lambda: _served(eodhd), "the first chunk served", give_up=first.exited)
        chunk = _intraday(eodhd)[0].query
        start = datetime.fromtimestamp(int(chunk["from"]), UTC)
        end = datetime.fromtimestamp(int(chunk["to"]), UTC) + timedelta(seconds=1)
        served = eodhd.truth("AAPL.US", Interval.M1, start, end)
        await until(
            lambda: _stored_exactly(db, len(served)), "the first chunk stored", give_up=first.exited
        )

        first.kill()  # SIGKILL while the second chunk is outstanding
        restarted_at = datetime.now(UTC)
        second = daemons()
        await until(lambda: _state(db, sub.id, "ok"), "the resumed run", give_up=second.exited)
        assert await asyncio.to_thread(second.stop, signal.SIGTERM) == 0

    stored = await historical_rows(db)
    expected = eodhd.truth(
        "AAPL.US", Interval.M1, stored[0][0], stored[-1][0] + timedelta(minutes=1)
    )
    assert stored[: len(served)] == served
    assert stored == expected  # nothing missing, nothing twice, every value as served
    closed_before_restart = eodhd.truth(
        "AAPL.US", Interval.M1, end, Interval.M1.floor(restarted_at)
    )
    assert closed_before_restart and stored[len(served) :][: len(closed_before_restart)] == (
        closed_before_restart
    )  # the chunk the killed daemon never got
    assert await db.fetchval("SELECT count(*) FROM collection_runs WHERE finished_at IS NULL") == 0
    for daemon in (first, second):
        assert TOKEN not in daemon.stderr()


def _intraday(eodhd: FakeEodhd) -> list[Any]:
    return [r for r in eodhd.server.requests if r.path.startswith("/api/intraday")]


async def _served(eodhd: FakeEodhd) -> bool:
    return any(r.status == 200 for r in _intraday(eodhd))


async def _stored_exactly(db: Database, n: int) -> bool:
    return len(await historical_rows(db)) == n
