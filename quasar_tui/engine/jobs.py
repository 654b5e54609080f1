"""The engine's historical jobs: one scheduled job per historical subscription, run in tasks
that can be interrupted on purpose (paused, deleted, provider reloading) without that counting
as a failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from quasar_tui.core.intervals import Interval
from quasar_tui.core.messages import one_line
from quasar_tui.engine.events import EngineError
from quasar_tui.engine.historical import run_historical
from quasar_tui.engine.progress import Backfills
from quasar_tui.engine.scheduler import HistoricalScheduler
from quasar_tui.engine.shared import Shared
from quasar_tui.engine.states import SubState
from quasar_tui.registry.subscriptions import SubscriptionRecord

log = logging.getLogger("quasar.engine")


def label(sub: SubscriptionRecord) -> str:
    return f"{sub.provider} {sub.symbol} {sub.interval} {sub.mode} (id {sub.id})"


class HistoricalJobs:
    """Scheduled historical collection; `reconcile` makes the jobs match the subscriptions."""

    def __init__(self, shared: Shared, *, bar_delay: float) -> None:
        self.shared = shared
        self.scheduler = HistoricalScheduler(self._run, delay=bar_delay)
        self.backfills = Backfills()
        self._wanted: dict[int, SubscriptionRecord] = {}
        self._running: dict[int, asyncio.Task[Any]] = {}
        self._interrupted: set[int] = set()
        self._stopping = False

    @property
    def running_count(self) -> int:
        return len(self._running)

    def start(self) -> None:
        self._stopping = False
        self.scheduler.start()

    def add_periodic(self, job: Callable[[], Awaitable[None]], every: float, name: str) -> None:
        self.scheduler.add_periodic(job, every, name)

    async def stop(self) -> None:
        """Shut the scheduler down and cancel the jobs running now (an engine stop)."""
        self._stopping = True
        self.scheduler.shutdown()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def run_now(self, sub_id: int) -> bool:
        """Run a subscription's job now; False when it has no job here."""
        return self.scheduler.run_now(sub_id)

    def reconcile(self, wanted: dict[int, SubscriptionRecord]) -> None:
        self._wanted = wanted
        added, removed = self.scheduler.reconcile(
            {sid: Interval(sub.interval) for sid, sub in wanted.items()}
        )
        for sid in removed:
            self.interrupt(sid)
        if added or removed:
            log.info("historical jobs: %d (+%d -%d)", len(wanted), len(added), len(removed))

    def interrupt_provider(self, name: str) -> None:
        """Cancel the running jobs of a provider whose instance is going away."""
        for sid, sub in list(self._wanted.items()):
            if sub.provider == name:
                self.interrupt(sid)

    def interrupt(self, sub_id: int) -> None:
        """Cancel a running job on purpose (paused, deleted, provider reloading)."""
        task = self._running.get(sub_id)
        if task is not None:
            self._interrupted.add(sub_id)
            task.cancel()

    async def _run(self, sub_id: int) -> None:
        shared = self.shared
        sub = self._wanted.get(sub_id)
        instance = shared.providers.instance(sub.provider) if sub is not None else None
        if sub is None or instance is None:
            return
        if not instance.has_history:
            await shared.states.set(sub, SubState("error", f"{sub.provider} serves no history"))
            return
        this = asyncio.current_task()
        assert this is not None
        self._running[sub_id] = this
        try:
            await shared.states.set(sub, SubState("running"))
            run = await run_historical(
                shared.db,
                shared.writer,
                shared.bus,
                instance,
                sub,
                now=shared.clock(),
                backfills=self.backfills,
            )
        except asyncio.CancelledError:
            if not self._stopping and sub_id not in self._interrupted:
                raise
            log.info(
                "historical %s: interrupted (%s)",
                label(sub),
                "shutdown" if self._stopping else "subscription or provider changed",
            )
            return
        except Exception as exc:
            message = one_line(exc)
            log.warning("historical %s failed: %s", label(sub), message)
            shared.bus.publish(EngineError(f"historical:{sub.provider}:{sub.symbol}", message))
            await shared.states.set(sub, SubState("error", message))
        else:
            state = "error" if run.status == "failed" else run.status
            await shared.states.set(sub, SubState(state, run.error), ran_at=run.finished_at)
        finally:
            self._interrupted.discard(sub_id)
            if self._running.get(sub_id) is this:
                del self._running[sub_id]
