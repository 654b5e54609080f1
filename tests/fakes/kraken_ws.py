"""A loopback Kraken spot WebSocket v2 server, and the market both Kraken fakes serve.

The test drives it: it makes trades (each gets the pair's next trade id and is sent to every
connection subscribed to the pair), re-sends old ones, drops every connection, refuses new
ones, or goes silent. Everything sent and received is recorded, and so is every trade made,
seen live or not, so the REST fake can serve candles for the spans a client missed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from quasar_tui.core.intervals import Interval

# key: (altname, wsname, base, quote), as REST AssetPairs reports them.
DEFAULT_PAIRS: dict[str, tuple[str, str, str, str]] = {
    "XXBTZUSD": ("XBTUSD", "XBT/USD", "XXBT", "ZUSD"),
    "XETHZUSD": ("ETHUSD", "ETH/USD", "XETH", "ZUSD"),
    "XDGUSD": ("XDGUSD", "XDG/USD", "XXDG", "ZUSD"),
    "XXBTZUSD.d": ("XBTUSD.d", "XBT/USD", "XXBT", "ZUSD"),
}
_V2 = {"XBT": "BTC", "XDG": "DOGE"}


def v2_symbol(wsname: str) -> str:
    return "/".join(_V2.get(part, part) for part in wsname.split("/"))


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Trade:
    symbol: str
    trade_id: int
    price: float
    qty: float
    side: str
    ts: datetime

    def item(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "price": self.price,
            "qty": self.qty,
            "ord_type": "limit",
            "trade_id": self.trade_id,
            "timestamp": rfc3339(self.ts),
        }


BarKey = tuple[str, str, datetime]


def bars_from_trades(trades: Iterable[Trade], intervals: Iterable[Interval]) -> dict[BarKey, tuple]:
    """The reference: (symbol, interval, start) -> OHLCV and trade count, from served trades."""
    bars: dict[BarKey, list] = {}
    for interval in intervals:
        for t in trades:
            key = (t.symbol, interval.value, interval.floor(t.ts))
            bar = bars.get(key)
            if bar is None:
                bars[key] = [t.price, t.price, t.price, t.price, t.qty, 1]
            else:
                bar[1], bar[2], bar[3] = max(bar[1], t.price), min(bar[2], t.price), t.price
                bar[4] += t.qty
                bar[5] += 1
    return {k: tuple(v) for k, v in bars.items()}


async def stored_live_bars(db: Any, provider: str = "KRAKEN") -> dict[BarKey, tuple]:
    """What live_data holds for `provider`, keyed like `bars_from_trades`."""
    rows = await db.fetch(
        "SELECT symbol, interval, ts, open, high, low, close, volume, trades "
        "FROM live_data WHERE provider = $1",
        provider,
    )
    return {(r[0], r[1], r[2]): tuple(r)[3:] for r in rows}


class KrakenMarket:
    """Pairs, every trade made (per v2 symbol, in order) and the exchange's clock."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        pairs: dict[str, tuple[str, str, str, str]] | None = None,
    ) -> None:
        self.clock = clock
        self.pairs = dict(DEFAULT_PAIRS if pairs is None else pairs)
        self.symbols = {
            v2_symbol(ws) for key, (_, ws, _, _) in self.pairs.items() if not key.endswith(".d")
        }
        self.trades: dict[str, list[Trade]] = {s: [] for s in self.symbols}
        self._ids = {s: itertools.count(1000) for s in self.symbols}

    def record(self, symbol: str, price: float, qty: float, ts: datetime, side: str) -> Trade:
        trade = Trade(symbol, next(self._ids[symbol]), price, qty, side, ts)
        self.trades[symbol].append(trade)
        return trade

    def skip_ids(self, symbol: str, count: int) -> None:
        """Burn trade ids, as an exchange whose ids are not sequential would."""
        for _ in range(count):
            next(self._ids[symbol])

    def symbol_of_pair(self, pair: str) -> str | None:
        """The v2 symbol for a REST pair name (altname or key)."""
        for key, (alt, ws, _, _) in self.pairs.items():
            if pair in (key, alt) and not key.endswith(".d"):
                return v2_symbol(ws)
        return None


@dataclass
class _Client:
    conn: ServerConnection
    number: int
    subscriptions: set[tuple[str, str]] = field(default_factory=set)
    last_sent: float = field(default_factory=time.monotonic)
    silent: bool = False  # this connection alone goes unanswered (`silence_connections`)


class KrakenWSFake:
    def __init__(self, market: KrakenMarket, heartbeat_interval: float = 1.0) -> None:
        self.market = market
        self.heartbeat_interval = heartbeat_interval
        self.refusing = False
        self.silent = False
        self.pinging = False  # while silent, WebSocket ping frames still go out
        self.pings = 0
        self.served: list[tuple[int, dict[str, Any]]] = []
        self.received: list[tuple[int, dict[str, Any]]] = []
        self.delivered_trades = 0
        self.connects = 0
        self.refused_connects = 0
        self._clients: dict[int, _Client] = {}
        self._numbers = itertools.count(1)
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/v2"

    async def start(self) -> str:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request
        )
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- test controls ---------------------------------------------------------------------

    async def trade(
        self,
        symbol: str,
        price: float,
        qty: float,
        ts: datetime | None = None,
        side: str = "buy",
    ) -> Trade:
        """Make a trade and send it to every client subscribed to the pair's trades."""
        trade = self.market.record(symbol, price, qty, ts or self.market.clock(), side)
        await self._broadcast(symbol, "update", [trade])
        return trade

    async def resend(self, symbol: str, trades: list[Trade]) -> None:
        """Send trades again, as a snapshot (what a client may see after resubscribing)."""
        await self._broadcast(symbol, "snapshot", trades)

    async def ticker(self, symbol: str, bid: float, ask: float, last: float) -> None:
        item = {
            "symbol": symbol,
            "bid": bid,
            "bid_qty": 1.0,
            "ask": ask,
            "ask_qty": 1.0,
            "last": last,
            "volume": 100.0,
            "vwap": last,
            "low": bid,
            "high": ask,
            "change": 0.5,
            "change_pct": 0.25,
        }
        for client in self._subscribers("ticker", symbol):
            await self._send(client, {"channel": "ticker", "type": "update", "data": [item]})

    async def drop(self) -> None:
        """Cut every connection without a close handshake, as a network failure would."""
        clients = list(self._clients.values())
        for client in clients:
            client.conn.transport.abort()
        for client in clients:
            await client.conn.wait_closed()

    async def wait_subscribed(self, symbol: str, channel: str = "trade") -> None:
        """Until some connection is subscribed to `channel` for `symbol` (10 s at most)."""
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: any(self._subscribers(channel, symbol)))

    def messages(self, **match: Any) -> list[dict[str, Any]]:
        """Served messages whose top-level fields equal `match`."""
        return [m for _, m in self.served if all(m.get(k) == v for k, v in match.items())]

    # -- server ----------------------------------------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.refusing:
            self.refused_connects += 1
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "try again later\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        client = _Client(conn, next(self._numbers))
        self._clients[client.number] = client
        self.connects += 1
        heartbeats = asyncio.create_task(self._heartbeats(client))
        try:
            await self._send(
                client,
                {
                    "channel": "status",
                    "type": "update",
                    "data": [
                        {
                            "version": "2.0.0",
                            "system": "online",
                            "api_version": "v2",
                            "connection_id": client.number,
                        }
                    ],
                },
            )
            async for raw in conn:
                message = json.loads(raw)
                self.received.append((client.number, message))
                if not (self.silent or client.silent):
                    await self._answer(client, message)
        except ConnectionClosed:
            pass  # the client left or drop() cut it: nothing more to serve
        finally:
            heartbeats.cancel()
            del self._clients[client.number]
            await self._notify()

    async def _answer(self, client: _Client, message: dict[str, Any]) -> None:
        method, req_id = message.get("method"), message.get("req_id")
        stamp = rfc3339(datetime.now(UTC))
        if method == "ping":
            await self._send(
                client, {"method": "pong", "req_id": req_id, "time_in": stamp, "time_out": stamp}
            )
            return
        if method not in ("subscribe", "unsubscribe"):
            await self._send(
                client,
                {
                    "error": f"Method not found {method}",
                    "method": method,
                    "req_id": req_id,
                    "success": False,
                    "time_in": stamp,
                    "time_out": stamp,
                },
            )
            return
        params = message.get("params", {})
        channel = params.get("channel")
        for symbol in params.get("symbol", []):
            if symbol not in self.market.symbols:
                await self._send(
                    client,
                    {
                        "error": f"Currency pair not supported {symbol}",
                        "method": method,
                        "req_id": req_id,
                        "success": False,
                        "symbol": symbol,
                        "time_in": stamp,
                        "time_out": stamp,
                    },
                )
                continue
            if method == "subscribe":
                client.subscriptions.add((channel, symbol))
            else:
                client.subscriptions.discard((channel, symbol))
            result = {"channel": channel, "symbol": symbol}
            if channel == "trade":
                result["snapshot"] = bool(params.get("snapshot", False))
            await self._send(
                client,
                {
                    "method": method,
                    "result": result,
                    "success": True,
                    "req_id": req_id,
                    "time_in": stamp,
                    "time_out": stamp,
                },
            )
            if method == "subscribe" and channel == "trade" and params.get("snapshot"):
                recent = self.market.trades[symbol][-50:]
                if await self._send(
                    client,
                    {"channel": "trade", "type": "snapshot", "data": [t.item() for t in recent]},
                ):
                    self.delivered_trades += len(recent)
        await self._notify()

    async def _heartbeats(self, client: _Client) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval / 4)
            idle = time.monotonic() - client.last_sent >= self.heartbeat_interval
            if idle and not (self.silent or client.silent):
                await self._send(client, {"channel": "heartbeat"})
            elif self.silent and self.pinging:
                await client.conn.ping()
                self.pings += 1

    def silence_connections(self) -> None:
        """The connections open now go silent for good; the next ones are served as usual
        (a test of reconnection does not race the client's new subscription)."""
        for client in self._clients.values():
            client.silent = True

    def _subscribers(self, channel: str, symbol: str) -> list[_Client]:
        return [c for c in self._clients.values() if (channel, symbol) in c.subscriptions]

    async def _broadcast(self, symbol: str, kind: str, trades: list[Trade]) -> None:
        if self.silent:
            return
        message = {"channel": "trade", "type": kind, "data": [t.item() for t in trades]}
        for client in self._subscribers("trade", symbol):
            if not client.silent and await self._send(client, message):
                self.delivered_trades += len(trades)

    async def _send(self, client: _Client, message: dict[str, Any]) -> bool:
        try:
            await client.conn.send(json.dumps(message))
        except ConnectionClosed:
            return False
        client.last_sent = time.monotonic()
        self.served.append((client.number, message))
        return True

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
