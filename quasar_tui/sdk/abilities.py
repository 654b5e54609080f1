"""Optional provider abilities, as Protocols: what a provider can do beyond its base class.

A live provider may also define `get_history` (so the engine fills the span missed while away)
and `get_trades` (so it fetches trades it never received). They are not methods of the base
classes, so whether a provider wrote one is told with `isinstance(provider, HistorySource)`,
which also tells the type checker that the method is there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Protocol, runtime_checkable

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk.models import Bar, RateBudget, Tick


@runtime_checkable
class HistorySource(Protocol):
    """Serves bars over a request/response API: every historical provider, some live ones."""

    def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        """Bars with start in [start, end), oldest first."""


@runtime_checkable
class TradeSource(Protocol):
    """Serves past trades by time: a live provider whose trade ids count up by one."""

    def get_trades(self, symbol: str, since: datetime) -> AsyncGenerator[Tick, None]:
        """The trades from `since` on, oldest first."""


@runtime_checkable
class RateBudgeted(Protocol):
    """Tells what its rate limit still allows: every provider (in process through its
    context, in its host through the last answer the host sent)."""

    def rate_budget(self) -> RateBudget | None:
        """The limit and the calls left in its current period; None when not known yet."""
