"""A loopback Polygon: `/v2/aggs` and `/v3/reference/tickers`, paginated with `next_url`.

Like the real service, `t` is the bar start in epoch milliseconds, day/week/month bars start at
midnight New York time, weeks on Sunday, and `next_url` carries a cursor but not the API key.
`page_size` makes pages small so tests see several of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from fakes.http_server import FakeHttpServer
from fakes.market import Market
from quasar_tui.core.intervals import Interval

KEY = "polygon-test-key"
NEW_YORK = ZoneInfo("America/New_York")
AGGREGATES = {
    (1, "minute"): Interval.M1,
    (5, "minute"): Interval.M5,
    (15, "minute"): Interval.M15,
    (30, "minute"): Interval.M30,
    (1, "hour"): Interval.H1,
    (4, "hour"): Interval.H4,
    (1, "day"): Interval.D1,
    (1, "week"): Interval.W1,
    (1, "month"): Interval.MO1,
}


@dataclass
class FakePolygon:
    tickers: tuple[str, ...] = ("AAPL", "MSFT", "X:BTCUSD")
    key: str = KEY
    market: Market = field(default_factory=Market)
    page_size: int = 50_000

    def __post_init__(self) -> None:
        self.server = FakeHttpServer()
        self.server.route(
            "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{first}/{last}", self._aggs
        )
        self.server.route("/v3/reference/tickers", self._tickers)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    async def __aenter__(self) -> FakePolygon:
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop()

    def truth(self, ticker: str, interval: Interval, start: datetime, end: datetime) -> list:
        return [
            (b.ts, b.open, b.high, b.low, b.close, b.volume)
            for b in self.market.bars(ticker, interval, start, end)
        ]

    # -- handlers -------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        if request.query.get("apiKey") != self.key:
            return web.json_response(
                {"status": "ERROR", "request_id": "fake", "error": "Unknown API Key"}, status=401
            )
        return None

    def _page(self, request: web.Request, results: list[dict], limit: int) -> dict:
        offset = int(request.query.get("cursor", "0"))
        size = min(limit, self.page_size)
        body: dict = {"status": "OK", "request_id": "fake", "results": results[offset:][:size]}
        body["resultsCount"] = body["count"] = len(body["results"])
        if offset + size < len(results):
            body["next_url"] = f"{self.base_url}{request.path}?cursor={offset + size}"
        return body

    async def _aggs(self, request: web.Request) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        info = request.match_info
        interval = AGGREGATES[(int(info["multiplier"]), info["timespan"])]
        first, last = _when(info["first"]), _when(info["last"])
        candidates = self.market.bars(
            info["ticker"], interval, first - timedelta(days=40), last + timedelta(days=40)
        )
        results = []
        for bar in candidates:
            t = _wire_start(bar.ts, interval, Market.around_the_clock(info["ticker"]))
            if first <= t <= last:
                results.append(
                    {
                        "v": bar.volume,
                        "vw": round((bar.high + bar.low) / 2, 4),
                        "o": bar.open,
                        "c": bar.close,
                        "h": bar.high,
                        "l": bar.low,
                        "t": int(t.timestamp() * 1000),
                        "n": int(bar.volume) // 100,
                    }
                )
        body = self._page(request, results, int(request.query.get("limit", "5000")))
        body.update(ticker=info["ticker"], queryCount=len(results), adjusted=True)
        return web.json_response(body)

    async def _tickers(self, request: web.Request) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        crypto = request.query.get("market") == "crypto"
        rows = [
            {
                "ticker": t,
                "name": f"{t} Inc." if not crypto else t[2:],
                "active": True,
                "market": "crypto" if crypto else "stocks",
                "locale": "us",
                "primary_exchange": None if crypto else "XNAS",
                "type": None if crypto else "CS",
                "currency_name": "usd",
                **(
                    {"currency_symbol": "USD", "base_currency_symbol": t[2:5]}
                    if crypto
                    else {"cik": f"{abs(sum(map(ord, t))):010d}", "composite_figi": f"BBG00{t:0>7}"}
                ),
            }
            for t in self.tickers
            if t.startswith("X:") == crypto
        ]
        return web.json_response(self._page(request, rows, int(request.query.get("limit", "100"))))


def _when(text: str) -> datetime:
    """A path bound: epoch milliseconds or YYYY-MM-DD."""
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _wire_start(key: datetime, interval: Interval, crypto: bool) -> datetime:
    """Where Polygon starts the bar Quasar keys at `key` (crypto days start at UTC midnight)."""
    if interval.is_intraday:
        return key
    day = key.date() - timedelta(days=1) if interval is Interval.W1 else key.date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC if crypto else NEW_YORK)
    return midnight.astimezone(UTC)
