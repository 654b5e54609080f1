"""A loopback Kraken public REST API (AssetPairs, OHLC, Trades) over the fake market.

Candles are computed from every trade the market made, the way Kraken commits them: only
intervals that had trades, the last row always the unfinished current candle, at most the
`ohlc_depth` most recent rows. Values are strings; errors come as HTTP 200 with an `error` list.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .kraken_ws import KrakenMarket, Trade

_TRADES_PER_CALL = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _nanoseconds(ts: datetime) -> int:
    """Exact nanoseconds since the epoch (Trades' `since` and `last` are nanoseconds)."""
    return (ts - _EPOCH) // timedelta(microseconds=1) * 1000


def _candle(start: int, trades: list[Trade], last_price: float) -> list[Any]:
    if not trades:
        p = repr(last_price)
        return [start, p, p, p, p, p, "0.0", 0]
    volume = 0.0
    notional = 0.0
    for t in trades:
        volume += t.qty
        notional += t.price * t.qty
    prices = [t.price for t in trades]
    return [
        start,
        repr(prices[0]),
        repr(max(prices)),
        repr(min(prices)),
        repr(prices[-1]),
        repr(notional / volume if volume else prices[-1]),
        repr(volume),
        len(trades),
    ]


class KrakenRestFake:
    def __init__(self, market: KrakenMarket, ohlc_depth: int = 720) -> None:
        self.market = market
        self.ohlc_depth = ohlc_depth
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.served_trades: list[Trade] = []  # every trade in a Trades answer
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/0/public/AssetPairs", self._asset_pairs)
        app.router.add_get("/0/public/OHLC", self._ohlc)
        app.router.add_get("/0/public/Trades", self._trades)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/0/public"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def calls(self, endpoint: str) -> list[dict[str, str]]:
        return [params for name, params in self.requests if name == endpoint]

    def _record(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        self.requests.append((request.path.rsplit("/", 1)[1], params))
        return params

    async def _asset_pairs(self, request: web.Request) -> web.Response:
        self._record(request)
        result = {
            key: {
                "altname": alt,
                "wsname": ws,
                "base": base,
                "quote": quote,
                "pair_decimals": 1,
                "lot_decimals": 8,
                "status": "online",
            }
            for key, (alt, ws, base, quote) in self.market.pairs.items()
        }
        return web.json_response({"error": [], "result": result})

    def _pair(self, params: dict[str, str]) -> tuple[str, str] | None:
        pair = params.get("pair", "")
        symbol = self.market.symbol_of_pair(pair)
        if symbol is None:
            return None
        key = next(k for k, (alt, _, _, _) in self.market.pairs.items() if pair in (k, alt))
        return key, symbol

    async def _ohlc(self, request: web.Request) -> web.Response:
        params = self._record(request)
        found = self._pair(params)
        if found is None:
            return web.json_response({"error": ["EQuery:Unknown asset pair"]})
        key, symbol = found
        step = int(params.get("interval", "1")) * 60
        since = int(params.get("since", "0"))
        now = int(self.market.clock().timestamp())
        current = now - now % step
        buckets: dict[int, list[Trade]] = {}
        for t in self.market.trades[symbol]:
            secs = int(t.ts.timestamp())
            start = secs - secs % step
            if start <= current:
                buckets.setdefault(start, []).append(t)
        committed = [s for s in sorted(buckets) if s < current]
        last_price = buckets[committed[-1]][-1].price if committed else 0.0
        rows = [_candle(s, buckets[s], last_price) for s in committed if s > since]
        rows.append(_candle(current, buckets.get(current, []), last_price))
        rows = rows[-self.ohlc_depth :]
        last = rows[-2][0] if len(rows) > 1 else since
        return web.json_response({"error": [], "result": {key: rows, "last": last}})

    async def _trades(self, request: web.Request) -> web.Response:
        params = self._record(request)
        found = self._pair(params)
        if found is None:
            return web.json_response({"error": ["EQuery:Unknown asset pair"]})
        key, symbol = found
        since = int(params.get("since", "0"))
        trades = [t for t in self.market.trades[symbol] if _nanoseconds(t.ts) > since]
        trades = trades[:_TRADES_PER_CALL]
        self.served_trades.extend(trades)
        rows = [
            [repr(t.price), repr(t.qty), t.ts.timestamp(), t.side[0], "l", "", t.trade_id]
            for t in trades
        ]
        last = str(_nanoseconds(trades[-1].ts)) if trades else str(since)
        return web.json_response({"error": [], "result": {key: rows, "last": last}})
