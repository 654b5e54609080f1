"""A provider host as the engine will use it: it answers like the provider, gets only its own
secrets, cannot reach the data dir, the database socket or its parent, is watched for blocking
calls, and is restarted or parked when it crashes. Nothing it ran survives it."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certifi
import psutil
import pytest

import quasar_tui
from quasar_tui.core.backoff import Backoff
from quasar_tui.core.intervals import Interval
from quasar_tui.registry.providers import bundled_dir
from quasar_tui.sandbox import confine
from quasar_tui.sandbox.client import (
    LINES_PER_WINDOW,
    HostError,
    HostSpec,
    ProviderHost,
    sweep_stale,
)
from quasar_tui.sandbox.protocol import State
from quasar_tui.sandbox.supervisor import CrashPolicy, HostSupervisor
from quasar_tui.sdk.models import RateBudget

FILES = Path(__file__).parent / "provider_files"
START = datetime(2024, 1, 1, tzinfo=UTC)
NEARBY = Path(quasar_tui.__file__).resolve().parents[1] / "pyproject.toml"


def _spec(filename: str, **prefs: object) -> HostSpec:
    return HostSpec(
        name=filename.removesuffix(".py"),
        source=(FILES / filename).read_text(),
        filename=filename,
        preferences=dict(prefs),
        secrets={"api_key": "k-own"},
    )


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_the_host_answers_like_the_provider_and_leaves_nothing() -> None:
    host = ProviderHost(_spec("good_historical.py", base_price=5.0))
    ready = await host.start()
    assert (ready.name, ready.kind, ready.isolation) == (
        "synthetic",
        "historical",
        confine.isolation(),
    )
    bars = [b async for b in host.get_history("AAA", START, START.replace(hour=3), Interval.H1)]
    assert [(b.ts.hour, b.open) for b in bars] == [(0, 5.0), (1, 6.0), (2, 7.0)]
    # The host says what the provider's rate limit (the SDK's default) still allows.
    assert host.rate_budget() == RateBudget(calls=10, period=1.0, left=10)
    assert [s.symbol for s in await host.fetch_available_symbols()] == ["AAA", "BBB"]
    pid, private = host.pid, host._private
    assert pid is not None and private is not None
    assert os.getsid(pid) == pid  # a session of its own
    await host.stop()
    assert _gone(pid)
    assert not private.exists()


async def test_the_host_cannot_read_the_data_dir_or_reach_its_parent(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    key = data_dir / "master.key"
    key.write_bytes(b"k" * 32)
    nearby = NEARBY
    host = ProviderHost(_spec("snoop.py", target=str(key), nearby=str(nearby)))
    await host.start()
    try:
        probes = {s.symbol: s.name for s in await host.fetch_available_symbols()}
    finally:
        await host.stop()
    assert probes["secret"] == "allowed: 'k-own'"
    assert probes["write_private"] == "allowed: 2"
    assert probes["quasar_env"] == "allowed: []"
    if confine.landlock_abi() > 0:
        assert probes["read_target"] == "refused: PermissionError"
        assert probes["list_target_dir"] == "refused: PermissionError"
        if nearby.exists():  # a source checkout: only the package directories are readable
            assert probes["read_nearby"] == "refused: PermissionError"
    if confine.landlock_abi() >= 6:
        assert probes["kill_parent"] == "refused: PermissionError"
    assert probes["fork"] == "refused: PermissionError"
    assert probes["undo_parent_death_signal"] == "refused: PermissionError"
    assert probes["unix_socket"] == "refused: PermissionError"


async def test_a_blocking_call_is_logged_once_with_the_provider_and_the_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = ProviderHost(_spec("snoop.py"))
    await host.start()
    with caplog.at_level(logging.WARNING, logger="quasar.provider.snoop"):
        try:
            assert [b async for b in host.get_history("SLEEP", START, START, Interval.H1)] == []
            assert await host.ping(5.0)
        finally:
            await host.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text.count("event loop blocked for more than 2 s") == 1, text
    assert "snoop stderr:" in text
    assert "time.sleep(2.6)" in text


async def test_os_exit_in_a_method_fails_the_call_in_one_line() -> None:
    host = ProviderHost(_spec("snoop.py"))
    await host.start()
    pid = host.pid
    assert pid is not None
    with pytest.raises(HostError) as caught:
        [b async for b in host.get_history("EXIT", START, START, Interval.H1)]
    await host.kill()
    assert str(caught.value) == "snoop: the provider host exited with status 3"
    assert _gone(pid)


async def test_a_host_that_keeps_crashing_is_restarted_then_parked() -> None:
    spec = HostSpec(name="crasher", source="import os\nos._exit(4)\n", filename="crasher.py")
    policy = CrashPolicy(max_crashes=3, backoff=Backoff(base=0.01, cap=0.05))
    supervisor = HostSupervisor(spec, policy=policy)
    await asyncio.wait_for(supervisor.run(), 60)
    assert supervisor.status.restarts == 2
    assert supervisor.status.state == "parked: the provider host exited with status 4"
    supervisor.reenable()
    assert supervisor.status.state == "stopped"


async def test_a_crashed_host_is_restarted_and_answers_again() -> None:
    supervisor = HostSupervisor(
        _spec("snoop.py"), policy=CrashPolicy(backoff=Backoff(base=0.01, cap=0.05))
    )
    task = asyncio.create_task(supervisor.run())
    try:
        await asyncio.wait_for(supervisor.started.wait(), 30)
        first = supervisor.host
        assert first is not None
        with pytest.raises(HostError):
            [b async for b in first.get_history("EXIT", START, START, Interval.H1)]
        for _ in range(300):
            if supervisor.host is not first and supervisor.started.is_set():
                break
            await asyncio.sleep(0.1)
        second = supervisor.host
        assert second is not first and second is not None
        assert supervisor.status.restarts == 1
        assert "exited with status 3" in (supervisor.status.last_exit or "")
        assert len(await second.fetch_available_symbols()) == 10
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert supervisor.status.state == "stopped"
    assert second.pid is not None and _gone(second.pid)


async def test_the_live_feed_runs_in_the_host() -> None:
    source = (bundled_dir() / "simulated.py").read_text()
    host = ProviderHost(HostSpec(name="SIMULATED", source=source, filename="simulated.py"))
    await host.start()
    seen: list[str] = []
    symbols: set[str] = set()
    try:
        await host.set_subscriptions({"SIM/BTC": ["1min"], "ACME": [Interval.M1]})
        async with asyncio.timeout(30):
            async for item in host.live():
                if isinstance(item, State):
                    seen.append(item.state)
                    if item.state == "connected":  # the engine marks where it observes from
                        await host.observing()
                else:
                    symbols.update(t.symbol for t in item.ticks)
                if symbols == {"SIM/BTC", "ACME"}:
                    break
        await host.set_subscriptions({})
        async with asyncio.timeout(10):
            async for item in host.live():
                if isinstance(item, State) and item.state == "idle":
                    break
    finally:
        await host.stop()
    assert seen[:2] == ["connecting", "connected"]


async def test_output_is_marked_and_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    host = ProviderHost(_spec("snoop.py"))
    await host.start()
    with caplog.at_level(logging.WARNING, logger="quasar.provider.snoop"):
        try:
            assert [b async for b in host.get_history("PRINT", START, START, Interval.H1)] == []
            assert await host.ping(5.0)
        finally:
            await host.stop()
    lines = [r.getMessage() for r in caplog.records if "stdout" in r.getMessage()]
    assert lines[0] == "snoop stdout: line 0"
    assert lines[LINES_PER_WINDOW:] == [f"snoop: {200 - LINES_PER_WINDOW} stdout lines not logged"]


async def test_a_forged_frame_gets_the_host_killed() -> None:
    host = ProviderHost(_spec("snoop.py"))
    await host.start()
    with pytest.raises(HostError, match="was killed by SIGKILL"):
        [b async for b in host.get_history("FORGE", START, START, Interval.H1)]
    await host.kill()


PARENT = """
import asyncio, sys
from quasar_tui.sandbox.client import HostSpec, ProviderHost

async def main():
    host = ProviderHost(HostSpec("synthetic", sys.stdin.read(), "good_historical.py"))
    await host.start()
    print(host.pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_the_host_dies_with_its_parent() -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PARENT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert parent.stdin is not None and parent.stdout is not None
    parent.stdin.write((FILES / "good_historical.py").read_bytes())
    parent.stdin.close()
    pid = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    assert not _gone(pid)
    parent.kill()
    await parent.wait()
    for _ in range(50):
        if _gone(pid):
            break
        await asyncio.sleep(0.1)
    assert _gone(pid)


async def test_long_answers_arrive_whole_and_in_order() -> None:
    history = ProviderHost(_spec("good_historical.py"))
    trades = ProviderHost(_spec("trades_live.py"))
    await history.start()
    await trades.start()
    try:
        end = START + timedelta(days=30)
        bars = [b async for b in history.get_history("AAA", START, end, Interval.H1)]
        ticks = [t async for t in trades.get_trades("XBT/USD", START)]
        feed_states: list[str] = []
        await trades.set_subscriptions({"XBT/USD": [Interval.M1]})
        async with asyncio.timeout(10):
            async for item in trades.live():
                assert isinstance(item, State)
                feed_states.append(item.state)
                if item.state == "error":
                    break
    finally:
        await history.stop()
        await trades.stop()
    assert [b.ts for b in bars] == Interval.H1.starts(START, end)
    assert [t.trade_id for t in ticks] == list(range(1200))
    assert ticks[0].ts == START and ticks[0].side == "buy"
    assert feed_states == ["connecting", "error"]


async def test_the_users_certificate_trust_reaches_the_host_and_nothing_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CA named by SSL_CERT_FILE (a TLS-inspecting proxy's, a private feed's) is what the
    provider must verify its connections with; the file beside it stays out of reach."""
    ca = tmp_path / "ca.pem"
    shutil.copyfile(certifi.where(), ca)  # a real bundle: the host's HTTP client loads it
    beside = tmp_path / "master.key"
    beside.write_bytes(b"k" * 32)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    host = ProviderHost(_spec("snoop.py", target=str(ca), nearby=str(beside)))
    await host.start()
    try:
        assert host.pid is not None
        environ = psutil.Process(host.pid).environ()
        probes = {s.symbol: s.name for s in await host.fetch_available_symbols()}
    finally:
        await host.stop()
    assert environ["SSL_CERT_FILE"] == str(ca)
    assert probes["read_target"].startswith("allowed: b'")
    if confine.landlock_abi() > 0:
        assert probes["read_nearby"] == "refused: PermissionError"


async def test_secrets_are_in_neither_argv_nor_environment() -> None:
    host = ProviderHost(_spec("good_historical.py"))
    await host.start()
    try:
        assert host.pid is not None
        proc = psutil.Process(host.pid)
        cmdline, environ = proc.cmdline(), proc.environ()
    finally:
        await host.stop()
    assert not any("k-own" in part for part in cmdline)
    assert not any("k-own" in value for value in environ.values())
    assert sorted(k for k in environ if k.startswith("QUASAR")) == []


def test_private_dirs_of_a_killed_engine_are_swept(tmp_path: Path) -> None:
    dead = psutil.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"quasar-host-{dead.pid}-abc"
    live = tmp_path / f"quasar-host-{os.getpid()}-def"
    other = tmp_path / "quasar-hostile"
    for path in (stale, live, other):
        path.mkdir()
    (stale / "scratch.txt").write_text("left behind")
    assert sweep_stale(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


async def test_a_host_that_stops_answering_is_killed_and_restarted() -> None:
    supervisor = HostSupervisor(
        _spec("snoop.py"),
        policy=CrashPolicy(backoff=Backoff(base=0.01, cap=0.05)),
        unresponsive_after=1.0,
        ping_every=0.2,
    )
    task = asyncio.create_task(supervisor.run())
    try:
        await asyncio.wait_for(supervisor.started.wait(), 30)
        first = supervisor.host
        assert first is not None and first.pid is not None
        with pytest.raises(HostError, match="killed by SIGKILL"):
            async with asyncio.timeout(30):
                [b async for b in first.get_history("HANG", START, START, Interval.H1)]
        for _ in range(300):
            if supervisor.status.restarts == 1 and supervisor.started.is_set():
                break
            await asyncio.sleep(0.1)
        assert supervisor.status.last_exit == "snoop: did not answer for 1 s; killed"
        assert _gone(first.pid)
        second = supervisor.host
        assert second is not None and second is not first
        assert await second.ping(5.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_memory_beyond_the_limit_fails_the_call_not_the_host() -> None:
    host = ProviderHost(_spec("snoop.py"))
    await host.start()
    try:
        with pytest.raises(HostError) as caught:
            [b async for b in host.get_history("HOG", START, START, Interval.H1)]
        assert str(caught.value) == "snoop: MemoryError"
        assert await host.ping(5.0)
    finally:
        await host.stop()


async def test_a_host_is_not_killed_for_an_engine_behind_on_its_feed() -> None:
    """While the engine does not read the live feed (its writer waiting on a slow database),
    pongs wait behind the feed's frames: that is no reason to kill the host."""
    # The feed batching every 5 ms instead of 50 fills the host's queue in a second, not 13.
    fast = "\nSimulatedProvider.BATCH_SECONDS = 0.005\n"
    source = (bundled_dir() / "simulated.py").read_text() + fast
    spec = HostSpec(
        name="SIMULATED",
        source=source,
        filename="simulated.py",
        preferences={"symbol_count": 200, "ticks_per_second": 50.0},
    )
    supervisor = HostSupervisor(spec, unresponsive_after=1.0, ping_every=0.2)
    await supervisor.first_start()
    host = supervisor.host
    assert host is not None
    pings: list[float] = []
    ping = host.ping

    async def counted(within: float) -> bool:
        pings.append(within)
        return await ping(within)

    host.ping = counted  # type: ignore[method-assign]
    task = asyncio.create_task(supervisor.run())
    try:
        await host.set_subscriptions({f"SIM{n:04d}": [Interval.M1] for n in range(1, 201)})
        async for item in host.live():  # let the feed subscribe, then read no more
            if isinstance(item, State) and item.state == "connected":
                await host.observing()
                break
        for _ in range(600):
            if host.backlogged:
                break
            await asyncio.sleep(0.1)
        since = len(pings)
        for _ in range(300):  # pings go on, each unanswered within its second
            if len(pings) >= since + 3 or supervisor.host is not host:
                break
            await asyncio.sleep(0.1)
        assert host.backlogged and len(pings) >= since + 3
        assert supervisor.host is host and supervisor.status.restarts == 0
        assert host.running
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_host_killed_from_outside_is_reported_as_killed_not_as_hung() -> None:
    """Found by the host-kill drill: a ping sent after the host died, before the engine had
    noticed, failed at once, and the exit was put down as "did not answer for 30 s"."""
    supervisor = HostSupervisor(
        _spec("snoop.py"),
        policy=CrashPolicy(max_crashes=100, backoff=Backoff(base=0.01, cap=0.05)),
        ping_every=0.05,
    )
    task = asyncio.create_task(supervisor.run())
    try:
        for kill in range(1, 6):
            await asyncio.wait_for(supervisor.started.wait(), 30)
            host = supervisor.host
            assert host is not None and host.pid is not None
            os.kill(host.pid, signal.SIGKILL)
            # The engine's loop is busy a moment (a loaded machine): when it next runs, the
            # host has exited and the watch's next ping is due.
            time.sleep(0.3)  # noqa: ASYNC251
            for _ in range(300):
                if supervisor.status.restarts == kill:
                    break
                await asyncio.sleep(0.01)
            assert supervisor.status.last_exit == "snoop: the provider host was killed by SIGKILL"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
