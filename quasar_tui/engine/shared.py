"""What the engine's historical jobs and live sessions share."""

from __future__ import annotations

from dataclasses import dataclass

from quasar_tui.core.clock import Clock
from quasar_tui.engine.events import EventBus
from quasar_tui.engine.provider_pool import ProviderPool
from quasar_tui.engine.states import SubscriptionStates
from quasar_tui.engine.writer import Writer
from quasar_tui.store.database import Database


@dataclass(frozen=True)
class Shared:
    """Where rows go and what is reported to, the provider instances, the subscription states
    they write, and market time (`clock`; tests run it fast)."""

    db: Database
    writer: Writer
    bus: EventBus
    providers: ProviderPool
    states: SubscriptionStates
    clock: Clock
