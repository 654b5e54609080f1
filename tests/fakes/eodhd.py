"""A loopback EODHD: `/eod`, `/intraday` and `/exchange-symbol-list` in the real JSON shapes.

Daily bars are dated by their day; weekly and monthly bars by the first trading day in the
period (so a week whose Monday is a holiday is dated on the Tuesday). Intraday rows carry a
unix `timestamp` (bar start, UTC), `gmtoffset` 0 and a UTC `datetime`. Requests longer than
EODHD's intraday limits are refused like the real service refuses them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from fakes.http_server import FakeHttpServer
from fakes.market import Market, at
from quasar_tui.core.intervals import Interval

TOKEN = "eodhd-test-token"
PERIODS = {"d": Interval.D1, "w": Interval.W1, "m": Interval.MO1}
INTRADAY = {"1m": Interval.M1, "5m": Interval.M5, "1h": Interval.H1}
INTRADAY_LIMIT_DAYS = {"1m": 120, "5m": 600, "1h": 7200}
TYPES = {".CC": "Currency", ".US": "Common Stock"}


@dataclass
class FakeEodhd:
    symbols: tuple[str, ...] = ("AAPL.US", "MSFT.US", "BTC-USD.CC")
    token: str = TOKEN
    market: Market = field(default_factory=Market)
    quota_spent: bool = False

    def __post_init__(self) -> None:
        self.server = FakeHttpServer()
        self.server.route("/api/eod/{symbol}", self._eod)
        self.server.route("/api/intraday/{symbol}", self._intraday)
        self.server.route("/api/exchange-symbol-list/{exchange}", self._symbol_list)

    @property
    def base_url(self) -> str:
        return f"{self.server.base_url}/api"

    async def __aenter__(self) -> FakeEodhd:
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop()

    def truth(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list:
        """What the service serves, as Quasar keys it: (ts, open, high, low, close, volume)."""
        return [
            (b.ts, b.open, b.high, b.low, b.close, b.volume)
            for b in self.market.bars(symbol, interval, start, end)
        ]

    def requests(self, kind: str = "") -> int:
        return self.server.count(f"/api/{kind}")

    # -- handlers -------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        if request.query.get("api_token") != self.token:
            return web.json_response({"message": "Unauthenticated"}, status=401)
        if self.quota_spent:
            return web.json_response({"message": "Payment Required"}, status=402)
        if request.query.get("fmt") != "json":
            return web.Response(text="Date,Open,High,Low,Close,Adjusted_close,Volume\n")
        return None

    def _symbol(self, request: web.Request) -> str | None:
        symbol = request.match_info["symbol"]
        return symbol if symbol in self.symbols else None

    async def _eod(self, request: web.Request) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        symbol = self._symbol(request)
        if symbol is None:
            return web.Response(status=404, text="Ticker Not Found.")
        interval = PERIODS[request.query.get("period", "d")]
        first = date.fromisoformat(request.query["from"])
        last = date.fromisoformat(request.query["to"])
        rows = []
        for bar in self.market.bars(symbol, interval, at(first), at(last) + timedelta(days=1)):
            label = bar.ts.date()
            if interval is not Interval.D1:
                label = (
                    self.market.first_trading_day(symbol, bar.ts, interval.next_start(bar.ts))
                    or label
                )
            if first <= label <= last:
                rows.append(
                    {
                        "date": label.isoformat(),
                        "open": bar.open,
                        "high": bar.high,
                        "low": bar.low,
                        "close": bar.close,
                        "adjusted_close": bar.close,
                        "volume": int(bar.volume),
                    }
                )
        return web.json_response(rows)

    async def _intraday(self, request: web.Request) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        symbol = self._symbol(request)
        if symbol is None:
            return web.Response(status=404, text="Ticker Not Found.")
        code = request.query.get("interval", "5m")
        first, last = int(request.query["from"]), int(request.query["to"])
        if last - first > INTRADAY_LIMIT_DAYS[code] * 86_400:
            return web.json_response(
                {
                    "errors": {
                        "from": [
                            f"The maximum allowed range for {code} interval is "
                            f"{INTRADAY_LIMIT_DAYS[code]} days"
                        ]
                    }
                },
                status=422,
            )
        start = datetime.fromtimestamp(first, UTC)
        end = datetime.fromtimestamp(last, UTC) + timedelta(seconds=1)
        rows = [
            {
                "timestamp": int(bar.ts.timestamp()),
                "gmtoffset": 0,
                "datetime": bar.ts.strftime("%Y-%m-%d %H:%M:%S"),
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "volume": int(bar.volume),
            }
            for bar in self.market.bars(symbol, INTRADAY[code], start, end)
        ]
        return web.json_response(rows)

    async def _symbol_list(self, request: web.Request) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        exchange = request.match_info["exchange"]
        rows = []
        for symbol in self.symbols:
            code, suffix = symbol.rsplit(".", 1)
            if suffix != exchange:
                continue
            crypto = suffix == "CC"
            rows.append(
                {
                    "Code": code,
                    "Name": f"{code} {'Crypto' if crypto else 'Inc'}",
                    "Country": "Unknown" if crypto else "USA",
                    "Exchange": "CC" if crypto else "NASDAQ",
                    "Currency": code.split("-")[1] if crypto else "USD",
                    "Type": TYPES[f".{suffix}"],
                    "Isin": None if crypto else f"US{zlib.crc32(code.encode()):010d}",
                }
            )
        return web.json_response(rows)
