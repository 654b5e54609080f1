"""APScheduler jobs kept in line with the enabled historical subscriptions.

Each subscription gets one job that fires a little after every bar close on its interval's grid
(bars are keyed by their UTC start, so closes fall on the same grid) and once right away when the
job is new, which is also how a restarted engine resumes. Runs of one subscription never overlap.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from quasar_tui.core.clock import utc_now
from quasar_tui.core.intervals import Interval

log = logging.getLogger("quasar.engine.scheduler")

_JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


class BarCloseTrigger(BaseTrigger):
    """Fire `delay` seconds after each bar of `interval` closes (UTC).

    Computed from the bar grid every time, so a job's extra immediate first run does not
    shift later runs off the grid (APScheduler's interval trigger counts from the last run).
    """

    __slots__ = ("delay", "interval")

    def __init__(self, interval: Interval, delay: float) -> None:
        self.interval = interval
        self.delay = timedelta(seconds=delay)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        after = previous_fire_time or now
        candidate = self.interval.floor(after - self.delay) + self.delay
        if candidate < after or (previous_fire_time is not None and candidate == after):
            candidate = self.interval.next_start(candidate - self.delay) + self.delay
        return candidate

    def __str__(self) -> str:
        return f"bar close of {self.interval} + {self.delay.total_seconds():g}s"


def _job_id(sub_id: int) -> str:
    return f"historical:{sub_id}"


class HistoricalScheduler:
    """One job per subscription id; `reconcile` adds, re-times and removes them."""

    def __init__(self, run: Callable[[int], Awaitable[None]], *, delay: float = 10.0) -> None:
        self._run = run
        self._delay = delay
        self._intervals: dict[int, Interval] = {}
        self._scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=_JOB_DEFAULTS)

    @property
    def job_count(self) -> int:
        return len(self._intervals)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop firing; jobs still running are cancelled by the scheduler's executor."""
        self._scheduler.remove_all_jobs()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._intervals.clear()

    def reconcile(self, wanted: Mapping[int, Interval]) -> tuple[list[int], list[int]]:
        """Make the jobs match `wanted` (subscription id -> interval); return (added, removed).

        A new job runs immediately, then on its bar-close schedule.
        """
        removed = [sid for sid, iv in self._intervals.items() if wanted.get(sid) is not iv]
        for sid in removed:
            self._scheduler.remove_job(_job_id(sid))
            del self._intervals[sid]
        added = [sid for sid in wanted if sid not in self._intervals]
        for sid in added:
            interval = wanted[sid]
            self._scheduler.add_job(
                self._run,
                BarCloseTrigger(interval, self._delay),
                args=[sid],
                id=_job_id(sid),
                name=f"historical {sid} {interval}",
                next_run_time=utc_now(),
            )
            self._intervals[sid] = interval
        return added, [sid for sid in removed if sid not in wanted]

    def run_now(self, sub_id: int) -> bool:
        """Bring the next run forward to now; False when there is no such job."""
        if sub_id not in self._intervals:
            return False
        self._scheduler.modify_job(_job_id(sub_id), next_run_time=utc_now())
        return True

    def add_periodic(self, func: Callable[[], Awaitable[None]], seconds: float, name: str) -> None:
        """A housekeeping job (not tied to a subscription)."""
        self._scheduler.add_job(
            func,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            id=f"periodic:{name}",
            name=name,
        )
