"""Records a provider hands to the engine."""

from __future__ import annotations

from datetime import datetime

import msgspec

from quasar_tui.core.intervals import Interval


class Bar(msgspec.Struct, frozen=True, gc=False):
    """One OHLCV bar; `ts` is the bar's start in UTC, always.

    `trades` is the trade count when the source gives one; `interval` is set by candle streams
    (live `_parse_message`), where one connection may carry several intervals.
    """

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    symbol: str | None = None
    trades: int | None = None
    interval: Interval | None = None


class RateBudget(msgspec.Struct, frozen=True):
    """A provider's rate limit (`calls` per `period` seconds) and the calls `left` in the
    current period, as its HTTP client counts them."""

    calls: int
    period: float
    left: int


class Tick(msgspec.Struct, frozen=True, gc=False):
    """One trade (or quote update) as it happened.

    `trade_id` is the provider's sequence number when it has one; it makes re-delivered trades
    (snapshots after a reconnect) recognisable as duplicates.
    """

    symbol: str
    ts: datetime
    price: float
    size: float = 0.0
    side: str | None = None
    trade_id: int | None = None
    bid: float | None = None
    ask: float | None = None


class Quote(msgspec.Struct, frozen=True, gc=False):
    """Best bid/ask and 24 h figures from a ticker channel; shown live, not aggregated."""

    symbol: str
    ts: datetime
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    volume: float | None = None
    change_pct: float | None = None


class SubscriptionRefused(msgspec.Struct, frozen=True):
    """A live feed's refusal of one symbol; the engine reports it and keeps the others."""

    symbol: str
    reason: str
    channel: str | None = None


class SymbolInfo(msgspec.Struct, frozen=True):
    """An instrument a provider offers, as stored in the assets table."""

    symbol: str
    name: str | None = None
    exchange: str | None = None
    asset_class: str | None = None
    base: str | None = None
    quote: str | None = None
    provider_id: str | None = None
    figi: str | None = None
