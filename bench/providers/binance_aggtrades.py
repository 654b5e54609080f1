"""A third-party style live provider for Binance spot aggregate trades (`<symbol>@aggTrade`),
one trade a message, for the peer benchmark: what a user would write to follow such a feed.

Symbols are Binance's own (BTCUSDT); `exchangeInfo` lists them. Each message is decoded in one
pass into a msgspec struct (times and numbers included); the decimal strings Binance sends for
price and quantity are read as floats.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from quasar_tui.sdk import Interval, LiveDataProvider, Setting, SymbolInfo, Tick
from quasar_tui.sdk.websocket import connect


class _AggTrade(msgspec.Struct, gc=False):
    s: str
    a: int
    p: float
    q: float
    T: int
    m: bool
    e: str = ""


_DECODE = msgspec.json.Decoder(_AggTrade, strict=False).decode


class BinanceAggTrades(LiveDataProvider):
    name = "BINANCE_AGGTRADES"
    RATE_LIMIT = (10, 1.0)
    IDLE_TIMEOUT = 30.0
    HEARTBEAT_INTERVAL = 60.0
    CONFIGURABLE: ClassVar[dict[str, Setting | dict[str, Any]]] = {
        "ws_url": Setting("str", "wss://stream.binance.com:9443", "stream base URL"),
        "rest_url": Setting("str", "https://api.binance.com", "REST base URL"),
    }

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._ids = itertools.count(1)

    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        info = await self.http.get_json(f"{self.pref('rest_url')}/api/v3/exchangeInfo")
        return [
            SymbolInfo(
                symbol=s["symbol"],
                name=f"{s['baseAsset']}/{s['quoteAsset']}",
                exchange="BINANCE",
                asset_class="crypto",
                base=s["baseAsset"],
                quote=s["quoteAsset"],
                provider_id=s["symbol"],
            )
            for s in info["symbols"]
            if s.get("status") == "TRADING"
        ]

    async def _connect(self) -> Any:
        return await connect(f"{self.pref('ws_url')}/ws", max_size=2**20)

    def _request(self, method: str, symbols: list[str]) -> dict[str, Any]:
        streams = [f"{s.lower()}@aggTrade" for s in symbols]
        return {"method": method, "params": streams, "id": next(self._ids)}

    async def _subscribe(self, interval: Interval, symbols: list[str]) -> dict[str, Any]:
        return self._request("SUBSCRIBE", symbols)

    async def _unsubscribe(self, symbols: list[str]) -> dict[str, Any]:
        return self._request("UNSUBSCRIBE", symbols)

    async def _parse_message(self, message: str | bytes) -> list[Tick]:
        try:
            t = _DECODE(message)
        except msgspec.ValidationError:
            if "result" in msgspec.json.decode(message):
                return []  # a subscription answered
            raise
        side = "sell" if t.m else "buy"  # the buyer made the book: the seller took it
        return [Tick(t.s, datetime.fromtimestamp(t.T / 1000, UTC), t.p, t.q, side, t.a)]
