"""The providers the engine runs, each in its own sandboxed host, and what it last saw of each.

The engine never instantiates provider code: each provider runs in a `HostedProvider` (a
supervised host process, see sandbox/), given only its own preferences and decrypted secrets
over its pipe. A host is started from one version of its registry row (code hash and last user
edit); when the row changes the engine unloads it and loads it again. A load that failed is not
retried for the same version: the user has to change the code or the settings first. A host
that crashes after starting is restarted by its supervisor, and parked after too many crashes
until the user changes or re-enables the provider.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quasar_tui.core.messages import one_line
from quasar_tui.engine.events import DOWN_STATES, EngineError, EventBus
from quasar_tui.engine.states import guard
from quasar_tui.registry.providers import ProviderRegistry, host_spec
from quasar_tui.registry.records import ProviderRecord
from quasar_tui.sandbox.hosted import HostedProvider, HostOptions

log = logging.getLogger("quasar.engine")


@dataclass(frozen=True)
class Fingerprint:
    """Code hash and last user edit (preferences, secrets, enabled all bump `updated_at`)."""

    sha256: str
    updated_at: datetime

    @classmethod
    def of(cls, record: ProviderRecord) -> Fingerprint:
        return cls(record.sha256, record.updated_at)


@dataclass(frozen=True)
class Loaded:
    """A provider's host and the registry row version it was started from."""

    fingerprint: Fingerprint
    instance: HostedProvider


@dataclass(frozen=True)
class FailedLoad:
    """A version that failed to load, and why (in one line)."""

    fingerprint: Fingerprint
    detail: str


@dataclass(frozen=True)
class ProviderHealth:
    """What the engine last saw of a loaded provider (a `ProviderState` event's state)."""

    state: str
    detail: str | None = None


class ProviderPool:
    """Loads, tracks and closes provider instances; see the module docstring."""

    def __init__(
        self, registry: ProviderRegistry, bus: EventBus, host_options: HostOptions | None = None
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.host_options = host_options or HostOptions()
        self._loaded: dict[str, Loaded] = {}
        self._failed: dict[str, FailedLoad] = {}
        self._health: dict[str, ProviderHealth] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._loaded

    def names(self) -> list[str]:
        return list(self._loaded)

    def instance(self, name: str) -> HostedProvider | None:
        loaded = self._loaded.get(name)
        return None if loaded is None else loaded.instance

    def failure(self, name: str) -> str | None:
        """Why the current version of `name` could not be loaded; None when it could."""
        failed = self._failed.get(name)
        return None if failed is None else failed.detail

    def is_current(self, name: str, record: ProviderRecord) -> bool:
        """Whether the loaded instance was built from this version of the row."""
        loaded = self._loaded.get(name)
        return loaded is not None and loaded.fingerprint == Fingerprint.of(record)

    async def load(self, record: ProviderRecord) -> None:
        fingerprint = Fingerprint.of(record)
        failed = self._failed.get(record.name)
        if failed is not None and failed.fingerprint == fingerprint:
            return  # same code and settings failed before: wait for the user to change them
        try:
            code = await self.registry.stored_code(record.name)
            instance = HostedProvider(host_spec(code), self.host_options)
            await instance.start()
        except Exception as exc:  # any failure to start: kept, shown, not retried
            detail = one_line(exc).removeprefix(f"{record.name}: ")
            self._failed[record.name] = FailedLoad(fingerprint, detail)
            log.error("provider %s failed to load: %s", record.name, detail)
            self.bus.publish(EngineError(f"provider:{record.name}", f"failed to load: {detail}"))
            self._health[record.name] = ProviderHealth("error", detail)
            return
        self._failed.pop(record.name, None)
        self._loaded[record.name] = Loaded(fingerprint, instance)
        self._health[record.name] = ProviderHealth("idle")
        log.info(
            "provider %s started in its sandbox (%s, isolation: %s)",
            record.name,
            record.kind,
            instance.health().isolation,
        )

    async def close(self, name: str) -> None:
        """Stop the host (what used it is stopped already)."""
        loaded = self._loaded.pop(name, None)
        self._health.pop(name, None)
        if loaded is not None:
            try:
                await loaded.instance.aclose()
            except Exception as exc:
                log.warning("closing provider %s failed: %s", name, one_line(exc))

    def note(self, name: str, state: str, detail: str | None) -> None:
        """A loaded provider's state as its live session reported it."""
        if name in self._loaded:
            self._health[name] = ProviderHealth(state, detail)

    def keep_health_of(self, names: set[str]) -> None:
        """Forget what was seen of providers no longer in use."""
        for name in [n for n in self._health if n not in names]:
            del self._health[name]

    def _seen(self, name: str) -> ProviderHealth:
        """What was seen of `name`; a parked host overrides what its feed last said."""
        seen = self._health[name]
        loaded = self._loaded.get(name)
        if loaded is not None and loaded.instance.state.startswith("parked"):
            return ProviderHealth("error", loaded.instance.state)
        return seen

    async def sync_status(self, records: dict[str, ProviderRecord]) -> None:
        """The registry's status column follows what the engine saw, as of each reconcile
        (consoles get the live state from events or the published stats)."""
        for name in self._health:
            record = records.get(name)
            if record is None:
                continue
            seen = self._seen(name)
            status = seen.state if seen.state in DOWN_STATES else "ok"
            detail = seen.detail if status != "ok" else None
            if (record.status, record.status_detail) != (status, detail):
                await guard(self.registry.set_status(name, status, detail))

    def health(self) -> dict[str, dict[str, Any]]:
        """Per provider, {"state", "detail", "host"}: what `Engine.stats()` publishes; "host"
        (when it runs) is its `HostHealth`: host state, isolation, restarts, memory, CPU."""
        out: dict[str, dict[str, Any]] = {}
        for name in self._health:
            entry: dict[str, Any] = dataclasses.asdict(self._seen(name))
            loaded = self._loaded.get(name)
            if loaded is not None:
                entry["host"] = dataclasses.asdict(loaded.instance.health())
            out[name] = entry
        return out
