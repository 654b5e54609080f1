"""What the console holds: the database, the registry stores, and an engine it runs or watches.

The parts, by job: `feed` (the adapter from the engine, here or in a daemon, to the screens),
`view` (the engine as the dashboard shows it), `log` (Log entries, where they go, the logging
bridge and error toasts), `alerts` (the alert inbox and its toasts).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from quasar_tui.engine.engine import Engine
from quasar_tui.engine.lock import EngineLockedError
from quasar_tui.engine.publisher import EngineMonitor
from quasar_tui.registry.apikeys import ApiKeyStore
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.database import Database
from quasar_tui.tui.livebook import LiveBook
from quasar_tui.tui.services.feed import BusTaps
from quasar_tui.tui.services.log import LogEntry
from quasar_tui.tui.services.view import EngineView

LOG_KEPT = 5000

Say = Callable[[str], None]
"""Where the start tells the user what it is doing (the console's loading screen)."""


def _quiet(_: str) -> None:
    """A `Say` for callers with no loading screen."""


@dataclass(frozen=True)
class ConsoleOptions:
    """How the console draws: `fps` caps the screen and the live repaint rate (slow links)."""

    animation: bool = True
    clock: bool = True
    fps: int | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    keymap_path: Path | None = None

    @property
    def repaint_hz(self) -> float:
        return min(4.0, float(self.fps)) if self.fps else 4.0


class Services:
    """The console's handles: database, registry stores, and the engine or its monitor.

    `may_run_engine` False (tests, screenshots) never starts an engine here, not even when
    none runs elsewhere."""

    def __init__(
        self, db: Database, data_dir: Path, keyring: Keyring, *, may_run_engine: bool = True
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self.may_run_engine = may_run_engine
        self.providers = ProviderRegistry(db, keyring)
        self.api_keys = ApiKeyStore(db, keyring)
        self.assets = AssetStore(db)
        self.mappings = MappingStore(db)
        self.subscriptions = SubscriptionStore(db)
        self.engine: Engine | None = None
        self.taps: BusTaps | None = None
        self.monitor = EngineMonitor(db)
        self.book = LiveBook()
        self.log: deque[LogEntry] = deque(maxlen=LOG_KEPT)
        self.view = EngineView(owner=None, attached=True)

    @property
    def attached(self) -> bool:
        return self.engine is None

    @classmethod
    @asynccontextmanager
    async def running(
        cls, db: Database, data_dir: Path, *, run_engine: bool = True, say: Say = _quiet
    ) -> AsyncIterator[Services]:
        """Start an engine here, or attach when a daemon (or another console) holds the lock;
        an engine started here (at once or later, see `start_engine`) stops and flushes on
        exit. The database stays open: it is the caller's. `say` hears which of the two it
        does, before it does it."""
        services = cls(db, data_dir, Keyring.load_or_create(data_dir), may_run_engine=run_engine)
        try:
            status = await services.monitor.status()
            if status.running:
                who = status.owner.label if status.owner else "another engine"
                say(f"Attaching to the engine of the {who}...")
            elif run_engine:
                say("Starting the engine: providers, writers, subscriptions...")
            if run_engine:
                await services.start_engine()
            yield services
        finally:
            await services.stop_engine()

    async def start_engine(self) -> bool:
        """Run the engine in this process; False (and still attached) when another process
        holds the engine lock. The taps go on the bus before the engine starts so nothing it
        says while starting is lost."""
        engine = Engine.create(self.db, data_dir=self.data_dir, mode="console")
        taps = BusTaps.on(engine.bus)
        try:
            await engine.start()
        except EngineLockedError as exc:
            taps.close(engine.bus)
            self.view.owner = exc.owner
            return False
        except BaseException:
            taps.close(engine.bus)
            raise
        self.engine, self.taps = engine, taps
        self.view.attached, self.view.running, self.view.owner = False, True, engine.owner
        return True

    async def stop_engine(self) -> None:
        """Stop the engine running here, writing everything queued; once (a quit stops it
        while the screen shows progress, the exit then finds it stopped)."""
        engine, taps = self.engine, self.taps
        if engine is None or taps is None:
            return
        self.taps = None
        taps.close(engine.bus)
        await engine.stop()

    @property
    def engine_running_here(self) -> bool:
        return self.engine is not None and self.engine.running

    def rows_to_write(self) -> int:
        """Rows the engine here has queued and not yet written (the batch being written, or
        held for a retry, included)."""
        if self.engine is None:
            return 0
        return sum(int(w.get("queue_depth", 0)) for w in self.engine.writer.stats().values())

    def record(self, entry: LogEntry) -> None:
        self.log.append(entry)
        if entry.level == "error":
            self.view.errors.append(entry)
