"""The engine's live sessions: one per provider with enabled live subscriptions, each in a task
of its own, resumed where its stored bars, open gap records and stored ticks end."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.engine.events import EngineError
from quasar_tui.engine.live import LiveSession
from quasar_tui.engine.live_gaps import LiveGaps
from quasar_tui.engine.shared import Shared
from quasar_tui.engine.states import SubState
from quasar_tui.engine.tick_holes import newest_stored, stored_holes
from quasar_tui.registry.subscriptions import SubscriptionRecord

log = logging.getLogger("quasar.engine")

#: Symbol -> intervals wanted, of one provider.
Wanted = dict[str, set[Interval]]


@dataclass
class RunningSession:
    """A live session, the task running it, and the symbols it was last given."""

    session: LiveSession
    task: asyncio.Task[None]
    symbols: Wanted = field(default_factory=dict)


class LiveSessions:
    """Starts, updates and stops live sessions to match the live subscriptions."""

    def __init__(self, shared: Shared, *, options: dict[str, Any]) -> None:
        """`options` go to every `LiveSession`."""
        self.shared = shared
        self.options = options
        self._running: dict[str, RunningSession] = {}

    def symbol_counts(self) -> dict[str, int]:
        """Per provider, how many symbols its session streams."""
        return {name: len(live.symbols) for name, live in self._running.items()}

    def counters(self) -> dict[str, dict[str, int]]:
        """Per provider, its session's counters (connects, ticks, duplicates, fills, ...)."""
        return {name: live.session.counters() for name, live in self._running.items()}

    async def reconcile(self, wanted: dict[str, Wanted], subs: list[SubscriptionRecord]) -> None:
        """Sessions for the providers in `wanted` with those symbols; `subs` (the live
        subscriptions) get their state: running, or refused by the provider."""
        for name in [n for n in self._running if n not in wanted]:
            await self.stop(name)
        for name, symbols in wanted.items():
            live = self._running.get(name)
            if live is None:
                live = await self._start(name, subs)
            if live.symbols != symbols:
                await live.session.set_subscriptions(symbols)
                live.symbols = symbols
                log.info("%s live: %d symbols", name, len(symbols))
        for sub in subs:
            live = self._running.get(sub.provider)
            if live is None or Interval(sub.interval) not in live.symbols.get(sub.symbol, ()):
                continue
            refused = live.session.refused.get(sub.symbol)
            if refused is None:
                await self.shared.states.set(sub, SubState("running"))
            else:
                await self.shared.states.set(
                    sub, SubState("error", f"{sub.provider} refused it: {refused}")
                )

    async def _start(self, name: str, subs: list[SubscriptionRecord]) -> RunningSession:
        """A session that resumes each series after its last stored bar, or from its oldest
        span still waiting for a fill, whichever is older."""
        shared = self.shared
        instance = shared.providers.instance(name)
        assert instance is not None and instance.kind == "live"
        gap_log = LiveGaps(shared.db, name)
        session = LiveSession(
            name,
            instance,
            shared.writer,
            shared.bus,
            clock=shared.clock,
            gap_log=gap_log,
            **self.options,
        )
        series = {
            (s.symbol, Interval(s.interval)): s.last_bar_ts
            for s in subs
            if s.provider == name and s.enabled
        }
        resume = {key: key[1].next_start(last) for key, last in series.items() if last is not None}
        for key, start in (await gap_log.open_starts()).items():
            if key in series:
                resume[key] = min(start, resume.get(key, start))
        session.resume_from(resume)
        symbols = {symbol for symbol, _ in series}
        if session.holes is not None:
            session.resume_ticks(await newest_stored(shared.db, name, symbols))
        task = asyncio.create_task(self._supervise(name, session), name=f"engine:live:{name}")
        live = self._running[name] = RunningSession(session, task)
        if session.holes is not None:  # a scan of stored ticks: the session connects meanwhile
            for hole in await stored_holes(shared.db, name, symbols):
                session.holes.found(*hole)
        return live

    async def _supervise(self, name: str, session: LiveSession) -> None:
        """A session reconnects by itself; this only reports one that ended by a bug."""
        try:
            await session.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"live session ended: {one_line(exc)}"
            log.exception("%s %s", name, message)
            self.shared.bus.publish(EngineError(f"live:{name}", message))
            self._running.pop(name, None)  # the next periodic reconcile starts a new one

    async def stop(self, name: str) -> None:
        live = self._running.pop(name, None)
        if live is None:
            return
        try:
            await live.session.stop()
        except Exception as exc:
            log.error("%s: stopping the live session failed: %s", name, one_line(exc))
        live.task.cancel()
        await asyncio.gather(live.task, return_exceptions=True)

    async def stop_all(self) -> None:
        for name in list(self._running):
            await self.stop(name)
