"""Kraken spot: live trades and tickers over WebSocket v2, symbols and gap-fill history over REST.

Declarative in the way cryptofeed is: the engine owns the socket loop (connect, heartbeat,
watchdog, reconnect, resubscribe); this class only says what to send and how to read.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import msgspec

from quasar_tui.sdk import (
    Bar,
    Interval,
    LiveDataProvider,
    ProviderHTTPError,
    Quote,
    Setting,
    SubscriptionRefused,
    SymbolInfo,
    Tick,
)
from quasar_tui.sdk.websocket import connect

# Kraken's candle sizes in minutes, for the intervals Quasar stores.
OHLC_MINUTES: dict[Interval, int] = {
    Interval.M1: 1,
    Interval.M5: 5,
    Interval.M15: 15,
    Interval.M30: 30,
    Interval.H1: 60,
    Interval.H4: 240,
    Interval.D1: 1440,
    Interval.W1: 10080,
}
_INTERVAL_OF_MINUTES = {minutes: interval for interval, minutes in OHLC_MINUTES.items()}
# REST AssetPairs still speaks v1 asset codes; WebSocket v2 uses the common ones.
_V2_ASSET = {"XBT": "BTC", "XDG": "DOGE"}
_OHLC_DEPTH = 720  # REST OHLC returns at most this many of the most recent candles
_TRADES_PAGE = 1000  # REST Trades returns at most this many trades a call
_CHANNELS = frozenset({"trade", "ticker", "ohlc"})
_REST_SIDES = {"b": "buy", "s": "sell"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class _Trade(msgspec.Struct, gc=False):
    """A trade item as the v2 `trade` channel sends it (ord_type is not used)."""

    symbol: str
    price: float
    qty: float
    timestamp: datetime
    side: str | None = None
    trade_id: int | None = None


class _Ticker(msgspec.Struct, gc=False):
    """A ticker item of the v2 `ticker` channel, the figures a `Quote` shows."""

    symbol: str
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    volume: float | None = None
    change_pct: float | None = None
    timestamp: datetime | None = None


class _Trades(msgspec.Struct, tag_field="channel", tag="trade", gc=False):
    data: list[_Trade]


class _Tickers(msgspec.Struct, tag_field="channel", tag="ticker", gc=False):
    data: list[_Ticker]


class _Heartbeat(msgspec.Struct, tag_field="channel", tag="heartbeat", gc=False):
    """Sent every second while nothing else is: nothing to read."""


# The busy channels, one message a struct, decoded in one pass in C (timestamps included) as
# a union tagged by `channel`; strict=False reads numbers sent as strings, as float() did.
# Anything else (candles, status, acknowledgements) is rare and read as plain JSON.
_MESSAGE = msgspec.json.Decoder(_Trades | _Tickers | _Heartbeat, strict=False)
_DECODED = frozenset({"trade", "ticker", "heartbeat"})


def _v2_asset(code: str) -> str:
    return _V2_ASSET.get(code, code)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _trade_bars_list(bars: dict[datetime, list[float]], sym: str, interval: Interval) -> list[Bar]:
    return [
        Bar(
            ts=ts,
            open=b[0],
            high=b[1],
            low=b[2],
            close=b[3],
            volume=b[4],
            symbol=sym,
            trades=int(b[5]),
            interval=interval,
        )
        for ts, b in sorted(bars.items())
    ]


class KrakenProvider(LiveDataProvider):
    name = "KRAKEN"
    RATE_LIMIT = (1, 1.0)
    CONCURRENCY = 1
    IDLE_TIMEOUT = 10.0  # Kraken sends a heartbeat every second when nothing else happens
    HEARTBEAT_INTERVAL = 5.0  # pongs keep a connection with no subscriptions alive too
    TRADE_IDS_SEQUENTIAL = True  # v2 trade_id counts up by one per pair
    INTERVALS = tuple(OHLC_MINUTES)
    MAX_RANGE: ClassVar[dict[Interval, timedelta]] = {
        interval: interval.delta * _OHLC_DEPTH for interval in OHLC_MINUTES
    }
    CONFIGURABLE: ClassVar[dict[str, Setting]] = {
        "ws_url": Setting("str", "wss://ws.kraken.com/v2", "WebSocket v2 endpoint", max_length=512),
        "rest_url": Setting(
            "str", "https://api.kraken.com/0/public", "public REST base URL", max_length=512
        ),
        "channels": Setting(
            "str",
            "trade,ticker",
            "live channels, comma separated: trade, ticker, ohlc",
            max_length=64,
        ),
    }

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._req_ids = itertools.count(1)
        self._streaming: set[str] = set()
        self._ohlc: dict[str, set[int]] = {}
        self._rest_pairs: dict[str, str] = {}

    # -- configuration -----------------------------------------------------------------

    def channels(self) -> set[str]:
        wanted = {c.strip() for c in str(self.pref("channels")).split(",") if c.strip()}
        unknown = wanted - _CHANNELS
        if unknown:
            raise ValueError(
                f"unknown Kraken channel(s) {', '.join(sorted(unknown))}: "
                f"use {', '.join(sorted(_CHANNELS))}"
            )
        return wanted

    # -- REST ----------------------------------------------------------------------------

    async def _rest(self, endpoint: str, params: dict[str, Any] | None = None) -> Any:
        """The `result` of a public call; Kraken reports errors in a 200 body."""
        url = f"{str(self.pref('rest_url')).rstrip('/')}/{endpoint}"
        payload = await self.http.get_json(url, params)
        errors = payload.get("error") or []
        if errors:
            status = 429 if any("Rate limit" in e for e in errors) else None
            raise ProviderHTTPError(f"Kraken {endpoint}: {'; '.join(errors)}", status)
        return payload["result"]

    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        result = await self._rest("AssetPairs")
        symbols: list[SymbolInfo] = []
        pairs: dict[str, str] = {}
        for key, info in result.items():
            wsname = info.get("wsname")
            if not wsname or key.endswith(".d") or info.get("altname", "").endswith(".d"):
                continue
            base, quote = (_v2_asset(code) for code in wsname.split("/", 1))
            symbol = f"{base}/{quote}"
            pairs[symbol] = info.get("altname") or key
            symbols.append(
                SymbolInfo(
                    symbol=symbol,
                    name=symbol,
                    exchange="KRAKEN",
                    asset_class="crypto",
                    base=base,
                    quote=quote,
                    provider_id=key,
                )
            )
        self._rest_pairs = pairs
        return symbols

    async def _rest_pair(self, symbol: str) -> str:
        if symbol not in self._rest_pairs:
            await self.fetch_available_symbols()
        try:
            return self._rest_pairs[symbol]
        except KeyError:
            raise ValueError(f"Kraken has no pair {symbol!r}") from None

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        """Closed candles from REST OHLC. OHLC only reaches 720 candles back (and its last row
        is the unfinished candle, dropped); an older start is covered from REST Trades."""
        minutes = OHLC_MINUTES.get(interval)
        if minutes is None:
            raise ValueError(f"Kraken has no {interval} candles")
        pair = await self._rest_pair(sym)
        since = int(start.timestamp()) - 1
        result = await self._rest("OHLC", {"pair": pair, "interval": minutes, "since": since})
        rows = next(v for k, v in result.items() if k != "last")
        candles = [
            Bar(
                ts=datetime.fromtimestamp(int(row[0]), UTC),
                open=float(row[1]),
                high=float(row[2]),
                low=float(row[3]),
                close=float(row[4]),
                volume=float(row[6]),
                symbol=sym,
                trades=int(row[7]),
                interval=interval,
            )
            for row in rows[:-1]
        ]
        if len(rows) >= _OHLC_DEPTH and candles and candles[0].ts > start:
            for bar in await self._trade_bars(sym, start, min(end, candles[0].ts), interval):
                yield bar
        for bar in candles:
            if start <= bar.ts < end:
                yield bar

    async def _trade_bars(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> list[Bar]:
        """Bars built from REST Trades for a span older than the OHLC window."""
        bars: dict[datetime, list[float]] = {}
        async with aclosing(self.get_trades(sym, start)) as trades:
            async for t in trades:
                if t.ts >= end:
                    break
                p, q = t.price, t.size
                key = interval.floor(t.ts)
                b = bars.get(key)
                if b is None:
                    bars[key] = [p, p, p, p, q, 1]
                else:
                    b[1], b[2], b[3] = max(b[1], p), min(b[2], p), p
                    b[4] += q
                    b[5] += 1
        return _trade_bars_list(bars, sym, interval)

    async def get_trades(self, sym: str, since: datetime) -> AsyncIterator[Tick]:
        """Trades from `since` on from REST Trades (1000 a call), oldest first: what the
        engine fetches when trade ids show it missed some."""
        pair = await self._rest_pair(sym)
        # REST answers the trades after `since`, in nanoseconds (exact: no float on the way)
        cursor = (since - _EPOCH) // _MICROSECOND * 1000 - 1
        newest = -1
        while True:
            result = await self._rest("Trades", {"pair": pair, "since": cursor})
            rows = next(v for k, v in result.items() if k != "last")
            for price, volume, when, side, _kind, _misc, trade_id, *_ in rows:
                if int(trade_id) > newest:
                    newest = int(trade_id)
                    yield Tick(
                        sym,
                        datetime.fromtimestamp(when, UTC),
                        float(price),
                        float(volume),
                        _REST_SIDES.get(side),
                        newest,
                    )
            following = int(result.get("last") or cursor)
            if len(rows) < _TRADES_PAGE or following <= cursor:
                return
            # The next page starts at the last trade's time again, so trades sharing it are
            # not skipped; the ids already yielded are.
            cursor = max(following - 1, cursor + 1)

    # -- WebSocket -----------------------------------------------------------------------

    async def _connect(self) -> Any:
        self._streaming.clear()
        self._ohlc.clear()
        # The SDK's client: no permessage-deflate (inflating each small JSON message costs more
        # CPU than the bandwidth it saves is worth) and socket reads paced on a busy stream.
        return await connect(str(self.pref("ws_url")), open_timeout=10, max_size=2**24)

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"method": method, "params": params, "req_id": next(self._req_ids)}

    async def _subscribe(self, interval: Interval, symbols: list[str]) -> list[dict[str, Any]]:
        channels = self.channels()
        messages: list[dict[str, Any]] = []
        new = [s for s in symbols if s not in self._streaming]
        if new and "trade" in channels:
            # The snapshot (the pair's last 50 trades) brings back trades made while this
            # session was away; the engine skips the ones it has already seen.
            messages.append(
                self._request("subscribe", {"channel": "trade", "symbol": new, "snapshot": True})
            )
        if new and "ticker" in channels:
            messages.append(self._request("subscribe", {"channel": "ticker", "symbol": new}))
        self._streaming.update(new)
        minutes = OHLC_MINUTES.get(interval)
        if "ohlc" in channels and minutes is not None:
            fresh = [s for s in symbols if minutes not in self._ohlc.get(s, ())]
            if fresh:
                messages.append(
                    self._request(
                        "subscribe",
                        {
                            "channel": "ohlc",
                            "symbol": fresh,
                            "interval": minutes,
                            "snapshot": False,
                        },
                    )
                )
            for s in fresh:
                self._ohlc.setdefault(s, set()).add(minutes)
        return messages

    async def _unsubscribe(self, symbols: list[str]) -> list[dict[str, Any]]:
        channels = self.channels()
        messages: list[dict[str, Any]] = []
        gone = [s for s in symbols if s in self._streaming]
        for channel in ("trade", "ticker"):
            if gone and channel in channels:
                messages.append(self._request("unsubscribe", {"channel": channel, "symbol": gone}))
        by_minutes: dict[int, list[str]] = {}
        for s in symbols:
            for minutes in self._ohlc.pop(s, ()):
                by_minutes.setdefault(minutes, []).append(s)
        for minutes, syms in sorted(by_minutes.items()):
            messages.append(
                self._request(
                    "unsubscribe", {"channel": "ohlc", "symbol": syms, "interval": minutes}
                )
            )
        self._streaming.difference_update(gone)
        return messages

    async def _heartbeat(self) -> dict[str, Any]:
        return {"method": "ping", "req_id": next(self._req_ids)}

    async def _parse_message(
        self, message: str | bytes
    ) -> list[Tick | Quote | Bar | SubscriptionRefused]:
        try:
            known = _MESSAGE.decode(message)
        except msgspec.ValidationError as exc:
            return self._parse_other(message, exc)
        if type(known) is _Trades:
            return [
                Tick(t.symbol, t.timestamp, t.price, t.qty, t.side, t.trade_id) for t in known.data
            ]
        if type(known) is _Tickers:
            return [self._quote(item) for item in known.data]
        return []  # a heartbeat

    def _parse_other(
        self, message: str | bytes, exc: msgspec.ValidationError
    ) -> list[Tick | Quote | Bar | SubscriptionRefused]:
        """A message of none of the busy channels' shapes: a rare channel, an acknowledgement,
        or a busy channel's message that is malformed (`exc` says how)."""
        data = json.loads(message)
        if data.get("channel") in _DECODED:
            raise exc
        method = data.get("method")
        if method is not None:
            if method == "subscribe" and data.get("success") is False:
                result = data.get("result") or {}
                symbol = data.get("symbol") or result.get("symbol") or "?"
                return [
                    SubscriptionRefused(
                        symbol=symbol,
                        reason=data.get("error", "refused"),
                        channel=result.get("channel"),
                    )
                ]
            return []
        if data.get("channel") == "ohlc":
            return [self._candle(item) for item in data["data"]]
        return []  # status and channels not used here

    @staticmethod
    def _quote(item: _Ticker) -> Quote:
        return Quote(
            symbol=item.symbol,
            ts=item.timestamp or datetime.now(UTC),
            bid=item.bid,
            ask=item.ask,
            last=item.last,
            volume=item.volume,
            change_pct=item.change_pct,
        )

    @staticmethod
    def _candle(item: dict[str, Any]) -> Bar:
        return Bar(
            ts=_time(item["interval_begin"]),
            open=float(item["open"]),
            high=float(item["high"]),
            low=float(item["low"]),
            close=float(item["close"]),
            volume=float(item["volume"]),
            symbol=item["symbol"],
            trades=int(item.get("trades", 0)),
            interval=_INTERVAL_OF_MINUTES.get(int(item["interval"])),
        )
