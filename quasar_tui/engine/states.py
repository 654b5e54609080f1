"""Bookkeeping writes of the engine: subscription states, written only when they change.

A bookkeeping write must not stop collection: a database outage or a row deleted meanwhile is
logged and the write is tried again at the next change or reconcile.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from quasar_tui.core.errors import NotFoundError
from quasar_tui.core.messages import one_line
from quasar_tui.registry.subscriptions import SubscriptionRecord, SubscriptionStore

log = logging.getLogger("quasar.engine")

DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@dataclass(frozen=True)
class SubState:
    """What the subscriptions table says of one subscription: its state and last error."""

    state: str
    error: str | None = None


async def guard(op: Awaitable[Any]) -> bool:
    """Run a bookkeeping write; False (and logged) when the database or the row is gone."""
    try:
        await op
    except DB_ERRORS as exc:
        log.warning("engine bookkeeping write failed: %s", one_line(exc))
        return False
    except NotFoundError as exc:
        log.info("engine bookkeeping skipped: %s", exc)
        return False
    return True


class SubscriptionStates:
    """The states the engine last wrote, so an unchanged state costs no write."""

    def __init__(self, store: SubscriptionStore) -> None:
        self.store = store
        self._written: dict[int, SubState] = {}

    async def set(
        self, sub: SubscriptionRecord, new: SubState, *, ran_at: datetime | None = None
    ) -> None:
        """Write a subscription's state when it changed (or a run finished)."""
        known = self._written.get(sub.id, SubState(sub.state, sub.last_error))
        if known == new and ran_at is None:
            return
        if await guard(self.store.set_state(sub.id, new.state, new.error, ran_at=ran_at)):
            self._written[sub.id] = new
