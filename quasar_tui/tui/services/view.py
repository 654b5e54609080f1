"""The engine as the dashboard shows it, whether it runs here or in a daemon."""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from quasar_tui.engine.events import ProviderState, WriterStats
from quasar_tui.engine.lock import EngineOwner
from quasar_tui.engine.progress import BackfillProgress, progress_from
from quasar_tui.engine.publisher import EngineStatus
from quasar_tui.sandbox.hosted import HostHealth
from quasar_tui.tui.services.log import LogEntry

log = logging.getLogger("quasar.tui")


@dataclass(frozen=True)
class LateTrades:
    """Trades that came after their bar was written, over every live session: `corrected`
    ones rebuilt `bars` bars from the stored ticks; `dropped` ones were lost (no stored ticks
    to rebuild from). `history_filled` ones are expected, not late: they fell in bars the
    session never saw whole (the snapshot a stream sends on subscribe), which REST fills."""

    corrected: int
    bars: int
    dropped: int
    history_filled: int = 0

    @classmethod
    def total(cls, counters: dict[str, Any]) -> LateTrades:
        def sum_of(name: str) -> int:
            return sum(int(c.get(name) or 0) for c in counters.values() if isinstance(c, dict))

        return cls(
            sum_of("late_corrected"),
            sum_of("bars_corrected"),
            sum_of("late_dropped"),
            sum_of("history_filled"),
        )


@dataclass
class EngineView:
    """The engine as the dashboard shows it: `Engine.stats()` and bus events when it runs here,
    the daemon's published status when attached."""

    owner: EngineOwner | None
    attached: bool
    running: bool = True
    providers: dict[str, ProviderState] = field(default_factory=dict)
    hosts: dict[str, HostHealth] = field(default_factory=dict)  # each provider's sandbox host
    writers: dict[str, WriterStats] = field(default_factory=dict)
    last_bars: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    rows_written: int = 0
    timescale_jobs: list[str] = field(default_factory=list)
    late: LateTrades = field(default_factory=lambda: LateTrades(0, 0, 0))
    backfills: dict[int, BackfillProgress] = field(default_factory=dict)  # by subscription id
    errors: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=50))
    took_over_from: EngineOwner | None = None

    @property
    def label(self) -> str:
        """What the header says about who runs the engine."""
        if not self.attached:
            gone = self.took_over_from
            since = f"; took over from {gone.mode} {gone.host}:{gone.pid}" if gone else ""
            return f"engine runs here (pid {os.getpid()}{since})"
        if not self.running:
            return "no engine running: edits are kept for the next one"
        if self.owner is None:
            return "attached to an engine (starting up)"
        return f"attached to {self.owner.mode} {self.owner.host}:{self.owner.pid}"

    def apply_status(self, status: EngineStatus) -> None:
        """A daemon's published status (attached consoles)."""
        self.owner = status.owner or self.owner
        self.running = status.running
        self.apply_stats(status.stats)

    def apply_stats(self, stats: dict[str, Any]) -> None:
        """`Engine.stats()`, read in-process or as the daemon published it."""
        self.hosts = {}
        for name, state in (stats.get("providers") or {}).items():
            if (converted := _convert(state, ProviderState, provider=name)) is not None:
                self.providers[name] = converted
            host = state.get("host") if isinstance(state, dict) else None
            if host is not None and (seen := _convert(host, HostHealth)) is not None:
                self.hosts[name] = seen
        for table, writer in (stats.get("writers") or {}).items():
            if (converted := _convert(writer, WriterStats, table=table)) is not None:
                self.writers[table] = converted
        self.rows_written = int(stats.get("rows_written") or 0)
        self.timescale_jobs = [str(line) for line in stats.get("timescaledb_jobs") or []]
        self.late = LateTrades.total(stats.get("live_counters") or {})
        self.backfills = progress_from(stats)


def _convert(data: Any, kind: type[Any], **fixed: Any) -> Any:
    """A stats entry back into the event struct; None for one this console cannot read
    (a daemon of another version), so an odd entry costs its row, not the dashboard."""
    try:
        return msgspec.convert({**data, **fixed}, kind)
    except (msgspec.ValidationError, TypeError):
        log.debug("unreadable engine stats entry for %s: %r", kind.__name__, data)
        return None
