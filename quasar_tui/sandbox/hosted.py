"""One provider as the engine uses it: a supervised host that outlives each of its processes.

`HostedProvider` answers the provider API (symbols, history, trades) through whichever host is
running now, keeps the live subscription set and replays it after every restart, and turns the
hosts' live streams into one stream that says when a host went away ("exited") or was parked.
Calls made while no host runs fail at once with a one-line `HostError`: the engine records
them as it records any provider failure (a gap to retry), and other providers never wait. A
live session's fills look at `available()` first, so a restart spends none of their attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import psutil

from quasar_tui.core.backoff import Backoff
from quasar_tui.core.intervals import Interval
from quasar_tui.sandbox.client import HostError, HostSpec, ProviderHost
from quasar_tui.sandbox.protocol import Live, Profile, Ready, State
from quasar_tui.sandbox.supervisor import (
    PING_EVERY,
    UNRESPONSIVE_AFTER,
    CrashPolicy,
    HostSupervisor,
    StartHook,
)
from quasar_tui.sdk.models import Bar, RateBudget, SymbolInfo, Tick

RESTART_POLL = 0.1  # seconds between looks for the next host while one restarts


@dataclass(frozen=True)
class HostOptions:
    """How a provider's host is supervised: restart backoff and the unresponsive limit
    (tests make them short)."""

    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    unresponsive_after: float = UNRESPONSIVE_AFTER
    ping_every: float = PING_EVERY

    def supervisor(self, spec: HostSpec, on_start: StartHook) -> HostSupervisor:
        return HostSupervisor(
            spec,
            policy=CrashPolicy(backoff=Backoff(self.backoff_base, self.backoff_cap)),
            on_start=on_start,
            unresponsive_after=self.unresponsive_after,
            ping_every=self.ping_every,
        )


@dataclass(frozen=True)
class HostHealth:
    """What status displays show of a provider's host."""

    state: str
    isolation: str
    restarts: int
    pid: int | None
    rss_bytes: int | None
    cpu_percent: float | None
    last_exit: str | None

    def summary(self) -> str:
        """One line for `quasar status`, the Dashboard and the Providers screen."""
        figures = [f"isolation: {self.isolation}", f"restarts {self.restarts}"]
        if self.rss_bytes is not None:
            figures.append(f"memory {self.rss_bytes / 2**20:.0f} MiB")
        if self.cpu_percent is not None:
            figures.append(f"cpu {self.cpu_percent:.0f}%")
        state = self.state.split(":", 1)[0]  # why it is parked is the provider's detail
        return f"host {state}, {', '.join(figures)}"


class HostedProvider:
    """A provider run in its sandbox; see the module docstring."""

    def __init__(self, spec: HostSpec, options: HostOptions | None = None) -> None:
        self.name = spec.name
        self.supervisor = (options or HostOptions()).supervisor(spec, self._replay)
        self.ready: Ready | None = None
        self._subs: dict[str, list[Interval]] = {}
        self._task: asyncio.Task[None] | None = None
        self._process: psutil.Process | None = None

    async def start(self) -> Ready:
        """Start the first host (HostError when it cannot), then keep one running."""
        await self.supervisor.first_start()
        self._task = asyncio.create_task(self.supervisor.run(), name=f"host:{self.name}")
        assert self.ready is not None  # _replay saw it
        return self.ready

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        elif self.supervisor.host is not None:
            await self.supervisor.host.stop()

    @property
    def profile(self) -> Profile:
        assert self.ready is not None, "start() first"
        return self.ready.profile

    # -- what the engine plans with --------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.profile.kind

    @property
    def has_history(self) -> bool:
        return self.profile.has_history

    @property
    def has_trades(self) -> bool:
        return self.profile.has_trades

    @property
    def fills_trades(self) -> bool:
        return self.profile.fills_trades

    @property
    def BARS_HAVE_CLOSE_FLAG(self) -> bool:
        return self.profile.bars_have_close_flag

    @property
    def INTERVALS(self) -> list[Interval] | None:
        return self.profile.intervals

    @property
    def MAX_RANGE(self) -> dict[Interval, timedelta]:
        return {iv: timedelta(seconds=s) for iv, s in self.profile.max_range.items()}

    # -- the provider API --------------------------------------------------------------------

    def available(self) -> bool:
        """Whether a host runs to take calls now (not while one restarts, starts or is
        parked)."""
        host = self.supervisor.host
        return host is not None and host.running and self.supervisor.started.is_set()

    def _host(self) -> ProviderHost:
        host = self.supervisor.host
        if host is None or not self.available():
            raise HostError(f"{self.name}: the provider host is {self.state}")
        return host

    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        return await self._host().fetch_available_symbols()

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        async for bar in self._host().get_history(sym, start, end, interval):
            yield bar

    async def get_trades(self, symbol: str, since: datetime) -> AsyncIterator[Tick]:
        async for tick in self._host().get_trades(symbol, since):
            yield tick

    def rate_budget(self) -> RateBudget | None:
        """What the provider's rate limit still allowed when its current host last answered
        (a backfill's progress shows it); None between hosts."""
        host = self.supervisor.host
        return host.rate_budget() if host is not None else None

    # -- live ----------------------------------------------------------------------------------

    async def set_subscriptions(self, subs: dict[str, list[Interval]]) -> None:
        """The whole live set; replayed to every new host."""
        self._subs = {s: list(ivs) for s, ivs in subs.items() if ivs}
        host = self.supervisor.host
        if host is not None and host.running and self.supervisor.started.is_set():
            with contextlib.suppress(HostError, ConnectionError):  # a restart replays it
                await host.set_subscriptions(self._subs)

    async def events(self) -> AsyncIterator[Live | State]:
        """Live batches and feed states of every host in turn; "exited" when one goes away,
        "parked" when no other will start."""
        host: ProviderHost | None = None
        while True:
            host = await self._next_host(host)
            if host is None:
                yield State("parked", self.state.removeprefix("parked: "))
                await asyncio.Event().wait()  # until the session is stopped
                continue
            async for item in host.live():
                yield item
                if isinstance(item, State) and item.state == "exited":
                    break

    async def _next_host(self, last: ProviderHost | None) -> ProviderHost | None:
        """The running host after `last`; None once the supervisor has given up (parked)."""
        supervisor = self.supervisor
        while True:
            host = supervisor.host
            if host is not None and host is not last and supervisor.started.is_set():
                return host
            if self._task is None or self._task.done():
                return None
            await asyncio.sleep(RESTART_POLL)

    async def observing(self) -> None:
        """The session marked where it observes from: the feed may subscribe."""
        with contextlib.suppress(HostError, ConnectionError):  # gone: the next host reconnects
            await self._host().observing()

    async def close(self) -> None:
        """The live session is done: the host's feed stops (the host keeps serving)."""
        await self.set_subscriptions({})

    async def _replay(self, host: ProviderHost) -> None:
        self.ready = host.ready
        self._process = None
        if self._subs:
            await host.set_subscriptions(self._subs)

    # -- health ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self.supervisor.status.state

    def health(self) -> HostHealth:
        status = self.supervisor.status
        rss, cpu = self._usage(status.pid if status.state == "running" else None)
        return HostHealth(
            state=status.state,
            isolation=self.ready.isolation if self.ready else "unknown",
            restarts=status.restarts,
            pid=status.pid,
            rss_bytes=rss,
            cpu_percent=cpu,
            last_exit=status.last_exit,
        )

    def _usage(self, pid: int | None) -> tuple[int | None, float | None]:
        """Resident memory and CPU use since the last call (the first call says 0.0)."""
        if pid is None:
            return None, None
        try:
            if self._process is None or self._process.pid != pid:
                self._process = psutil.Process(pid)
            return self._process.memory_info().rss, self._process.cpu_percent(None)
        except psutil.Error:
            return None, None
