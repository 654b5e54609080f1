"""The provider base classes. A provider file defines exactly one subclass of one of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk.abilities import HistorySource, TradeSource
from quasar_tui.sdk.context import ProviderContext
from quasar_tui.sdk.http import HttpClient
from quasar_tui.sdk.models import Bar, Quote, RateBudget, SymbolInfo, Tick
from quasar_tui.sdk.settings import Setting, normalise_schema

ALL_INTERVALS: tuple[Interval, ...] = tuple(Interval)


class DataProvider(ABC):
    """Common surface of every provider.

    Class attributes are declared data the registry reads without running any I/O:
    `name` (unique, shown everywhere), `RATE_LIMIT = (calls, seconds)`, `CONCURRENCY`
    (requests in flight), `CONFIGURABLE` (preference schema) and `SECRETS` (secret key names).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    RATE_LIMIT: ClassVar[tuple[int, float]] = (10, 1.0)
    CONCURRENCY: ClassVar[int] = 4
    CONFIGURABLE: ClassVar[dict[str, Setting | dict[str, Any]]] = {}
    SECRETS: ClassVar[tuple[str, ...]] = ()
    INTERVALS: ClassVar[tuple[Interval, ...]] = ALL_INTERVALS

    def __init__(self, context: ProviderContext | None = None) -> None:
        self.context = context or ProviderContext()

    @classmethod
    def settings(cls) -> dict[str, Setting]:
        return normalise_schema(cls.CONFIGURABLE)

    def pref(self, key: str) -> Any:
        """A preference value, falling back to the schema default."""
        if key in self.context.preferences:
            return self.context.preferences[key]
        setting = self.settings().get(key)
        return setting.default if setting else None

    @property
    def http(self) -> HttpClient:
        return self.context.http

    def rate_budget(self) -> RateBudget | None:
        """What `RATE_LIMIT` still allows now, for the engine's backfill progress."""
        return self.context.rate_budget()

    @abstractmethod
    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        """Every instrument this provider offers."""

    async def aclose(self) -> None:
        """Release connections; the engine calls it when the provider is unloaded."""
        if self.context._http is not None:
            await self.context._http.aclose()


class HistoricalDataProvider(DataProvider):
    """A provider of bars over a request/response API.

    `MAX_RANGE` caps how much one `get_history` call may cover per interval; the engine chunks
    longer ranges. Missing entries mean "no limit".
    """

    kind: ClassVar[str] = "historical"
    MAX_RANGE: ClassVar[dict[Interval, timedelta]] = {}

    @abstractmethod
    def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        """Bars with start in [start, end), oldest first; implement as an async generator."""

    async def get_history_many(
        self, reqs: Sequence[tuple[str, datetime, datetime, Interval]]
    ) -> AsyncIterator[tuple[str, Bar]]:
        """Several requests; override when the API can batch them."""
        for sym, start, end, interval in reqs:
            async for bar in self.get_history(sym, start, end, interval):
                yield sym, bar


class LiveDataProvider(DataProvider):
    """A streaming provider over WebSocket. The engine owns the connection loop.

    The engine calls `_connect()` for a connection, sends whatever `_subscribe` returns, reads
    messages and hands each to `_parse_message`, which returns ticks, quotes and/or bars. It
    watches for silence longer than `IDLE_TIMEOUT`, sends `_heartbeat()` every
    `HEARTBEAT_INTERVAL` seconds, reconnects with backoff and subscribes again.

    `_parse_message` may return `Bar`s from a candle channel; set `BARS_HAVE_CLOSE_FLAG = False`
    when such a channel repeats the current candle until the next one begins (the engine then
    finalises a candle when a later one arrives). Implement `get_history` as well to let the
    engine fill the span missed during a disconnect.

    When each symbol's trade ids count up by one, set `TRADE_IDS_SEQUENTIAL = True` and
    implement `get_trades(symbol, since)`, an async iterator of the `Tick`s from `since` on,
    oldest first: the engine then sees a skipped id as a trade it never received and fetches
    it from there, after a reconnect or a restart.
    """

    kind: ClassVar[str] = "live"
    IDLE_TIMEOUT: ClassVar[float] = 15.0
    HEARTBEAT_INTERVAL: ClassVar[float] = 10.0
    BARS_HAVE_CLOSE_FLAG: ClassVar[bool] = False
    TRADE_IDS_SEQUENTIAL: ClassVar[bool] = False

    @abstractmethod
    async def _connect(self) -> Any:
        """Open and return a WebSocket connection (e.g. `await websockets.connect(url)`)."""

    @abstractmethod
    async def _subscribe(self, interval: Interval, symbols: list[str]) -> Any:
        """Message(s) to send to subscribe: a dict, a str, or a list of them."""

    @abstractmethod
    async def _unsubscribe(self, symbols: list[str]) -> Any:
        """Message(s) to send to unsubscribe."""

    @abstractmethod
    async def _parse_message(self, message: str | bytes) -> Iterable[Tick | Quote | Bar]:
        """Turn one raw message into records; return an empty list for acks and heartbeats."""

    async def _heartbeat(self) -> Any:
        """Message to send to keep the connection alive, or None."""
        return None

    @property
    def has_history(self) -> bool:
        return isinstance(self, HistorySource)

    @property
    def fills_trades(self) -> bool:
        """Whether trades missed while away can be told (sequential ids) and fetched."""
        return self.TRADE_IDS_SEQUENTIAL and isinstance(self, TradeSource)
