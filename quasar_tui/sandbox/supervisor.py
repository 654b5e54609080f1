"""Keeps one provider host running: restart after a crash with capped jittered backoff, kill it
when its loop stops answering, park it after too many crashes.

A parked provider stays down (state "parked: <last error line>") until `reenable()`. Restarts
and the last exit are kept for status displays.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from quasar_tui.core.backoff import Backoff
from quasar_tui.sandbox.client import HostError, HostSpec, ProviderHost

MAX_CRASHES = 5
CRASH_WINDOW = 600.0
PING_EVERY = 5.0
UNRESPONSIVE_AFTER = 30.0

Clock = Callable[[], float]


class CrashPolicy:
    """Decides what follows a crash: a delay before the next start, or parking."""

    def __init__(
        self,
        max_crashes: int = MAX_CRASHES,
        window: float = CRASH_WINDOW,
        backoff: Backoff | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_crashes = max_crashes
        self.window = window
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.clock = clock
        self.crashes: deque[float] = deque()
        self.parked: str | None = None

    def crashed(self, error: str) -> float | None:
        """Seconds to wait before restarting, or None when the provider is now parked."""
        now = self.clock()
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > self.window:
            self.crashes.popleft()
        if len(self.crashes) >= self.max_crashes:
            self.parked = error
            return None
        return self.backoff.next()

    def healthy(self) -> None:
        """The host ran long enough: the next crash starts from the shortest delay again."""
        self.backoff.reset()

    def reenable(self) -> None:
        self.parked = None
        self.crashes.clear()
        self.backoff.reset()


@dataclass
class HostStatus:
    state: str = "stopped"
    restarts: int = 0
    last_exit: str | None = None
    pid: int | None = None


StartHook = Callable[[ProviderHost], Awaitable[None]]


class HostSupervisor:
    """Runs `ProviderHost`s for one spec until stopped. `on_start` runs after each (re)start,
    e.g. to replay live subscriptions."""

    def __init__(
        self,
        spec: HostSpec,
        *,
        policy: CrashPolicy | None = None,
        on_start: StartHook | None = None,
        healthy_after: float = 60.0,
        unresponsive_after: float = UNRESPONSIVE_AFTER,
        ping_every: float = PING_EVERY,
    ) -> None:
        self.spec = spec
        self.policy = policy or CrashPolicy()
        self.on_start = on_start
        self.healthy_after = healthy_after
        self.unresponsive_after = unresponsive_after
        self.ping_every = ping_every
        self.status = HostStatus()
        self.host: ProviderHost | None = None
        self.started = asyncio.Event()
        self._hung = False

    async def first_start(self) -> None:
        """Start the first host; a HostError says why it cannot (the code or its settings are
        at fault, so there is nothing to restart). `run()` then watches it."""
        host = self._new_host()
        try:
            await self._start(host)
        except HostError as exc:
            self.status.state = "stopped"
            self.status.last_exit = str(exc)
            raise

    async def run(self) -> None:
        """Start (unless `first_start` did), watch, restart; returns when parked. Cancel it
        to stop the host."""
        try:
            while True:
                error = await self._run_once()
                self.status.last_exit = error
                delay = self.policy.crashed(error)
                if delay is None:
                    line = error.removeprefix(f"{self.spec.name}: ")
                    self.status.state = f"parked: {line}"
                    self.started.clear()
                    return
                self.status.state = "restarting"
                await asyncio.sleep(delay)
                self.status.restarts += 1
        finally:
            if self.host is not None:
                await self.host.stop()
            if not self.status.state.startswith("parked"):
                self.status.state = "stopped"

    def _new_host(self) -> ProviderHost:
        self.started.clear()
        self.host = ProviderHost(self.spec)
        self.status.state = "starting"
        return self.host

    async def _start(self, host: ProviderHost) -> None:
        try:
            await host.start()
            if self.on_start is not None:
                await self.on_start(host)
        except HostError:
            await host.kill()
            raise
        self.status.state, self.status.pid = "running", host.pid
        self.started.set()

    async def _run_once(self) -> str:
        host = self.host
        if host is None or not self.started.is_set():
            host = self._new_host()
            try:
                await self._start(host)
            except HostError as exc:
                return str(exc)
        began = time.monotonic()
        self._hung = False
        watch = asyncio.create_task(self._watch(host))
        try:
            error = await host.wait()
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await host.kill()
        self.started.clear()
        if self._hung:
            error = f"{self.spec.name}: did not answer for {self.unresponsive_after:g} s; killed"
        if time.monotonic() - began >= self.healthy_after:
            self.policy.healthy()
        return error

    async def _watch(self, host: ProviderHost) -> None:
        """Kill a host whose event loop has not answered for `unresponsive_after` seconds."""
        while True:
            await asyncio.sleep(self.ping_every)
            try:
                answered = await host.ping(self.unresponsive_after)
            except HostError:
                return  # it exited: `host.wait()` says how
            if not answered and not host.backlogged:
                host.log.warning(
                    "%s: the provider host did not answer for %g s; killing it",
                    self.spec.name,
                    self.unresponsive_after,
                )
                self._hung = True
                await host.kill()
                return

    def reenable(self) -> None:
        self.policy.reenable()
        self.status.state = "stopped"
