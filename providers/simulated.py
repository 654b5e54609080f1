"""An offline market: deterministic random-walk trades and bars, for the demo and for anyone
without API keys (and for benchmarks: rate and symbol count are preferences).

Every price is a pure function of (seed, symbol, time): the log-price is a Brownian motion built
by midpoint displacement over ~48-day segments whose ends are drawn independently, so history
and live ticks lie on the same path, any instant can be evaluated without replaying the past,
and two runs with one seed agree exactly. Trade k of a symbol happens at (k + phase) / rate
seconds after the epoch and has trade id k.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from quasar_tui.sdk import (
    Bar,
    Interval,
    LiveDataProvider,
    Setting,
    SubscriptionRefused,
    SymbolInfo,
    Tick,
)

_MASK = (1 << 64) - 1
_TOP = 22  # top segments last 2**22 s (about 48 days); their ends are independent
_DEPTH = _TOP + 5  # halve down to 1/32 s
_VOL = 0.8 / math.sqrt(365.25 * 86_400)  # 80 % a year, per sqrt(second), on the log-price
_ANCHOR = 0.25  # spread of the log-price at segment ends around the symbol's base price
_SAMPLES = 32  # a history bar with more ticks than this is sampled at this many
_LENGTHS = [float(1 << _TOP) / (1 << level) for level in range(_DEPTH + 1)]  # seconds a segment
_MAX_CATCH_UP = 5.0  # seconds of market time one message may cover
_SLICE_SECONDS = 0.002  # longest stretch of history computing between turns of the event loop


def _mix(x: int) -> int:
    """splitmix64: a fast, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _uniform(h: int) -> float:
    """A float in (0, 1] from a hash."""
    return ((h >> 11) + 1) / 9007199254740992.0


def _gauss(h: int) -> float:
    return math.sqrt(-2.0 * math.log(_uniform(h))) * math.cos(2.0 * math.pi * _uniform(_mix(h)))


class _Path:
    """One symbol's log-price path with the last descent cached (ticks arrive in order)."""

    def __init__(self, key: int) -> None:
        self.key = key
        self.base = 10.0 ** (1.0 + 3.0 * _uniform(_mix(key ^ 0xBA5E)))
        self.phase = _uniform(_mix(key ^ 0xF1A5E)) % 1.0
        self.size = 100.0 / self.base  # about 100 currency units a trade
        self._idx = [None] * (_DEPTH + 1)
        self._lo = [0.0] * (_DEPTH + 1)
        self._hi = [0.0] * (_DEPTH + 1)

    def _noise(self, level: int, index: int) -> float:
        return _gauss(_mix(self.key ^ _mix((level << 48) ^ index)))

    def price(self, t: float) -> float:
        """The descent is cached: only the levels whose segment `t` left are computed again,
        found from the finest level up (a tick 0.1 s after the last one redoes about 5 of 27)."""
        idx, lo, hi = self._idx, self._lo, self._hi
        level = _DEPTH
        while level >= 0 and idx[level] != math.floor(t / _LENGTHS[level]):
            level -= 1
        if level < 0:
            top = math.floor(t / _LENGTHS[0])
            idx[0] = top
            lo[0] = _ANCHOR * self._noise(63, top)
            hi[0] = _ANCHOR * self._noise(63, top + 1)
            level = 0
        for child_level in range(level + 1, _DEPTH + 1):
            up = child_level - 1
            parent = idx[up]
            child = math.floor(t / _LENGTHS[child_level])
            mid = (lo[up] + hi[up]) / 2 + _VOL * math.sqrt(_LENGTHS[up]) / 2 * self._noise(
                up, parent
            )
            if child == 2 * parent:
                lo[child_level], hi[child_level] = lo[up], mid
            else:
                lo[child_level], hi[child_level] = mid, hi[up]
            idx[child_level] = child
        frac = t / _LENGTHS[_DEPTH] - idx[_DEPTH]
        x = lo[_DEPTH] + (hi[_DEPTH] - lo[_DEPTH]) * frac
        return _round(self.base * math.exp(x))

    def _trade_hash(self, k: int) -> int:
        return _mix(self.key ^ 0x7AD3 ^ _mix(k))

    def trade_size(self, k: int) -> float:
        return self._size(self._trade_hash(k))

    def _size(self, h: int) -> float:
        return round(max(1e-6, -math.log(_uniform(h)) * self.size), 6)

    def trade(self, symbol: str, k: int, rate: float) -> Tick:
        w = self.wire_trade(symbol, k, rate)
        return Tick(w.symbol, datetime.fromtimestamp(w.t, UTC), w.price, w.size, w.side, k)

    def wire_trade(self, symbol: str, k: int, rate: float) -> _WireTrade:
        t = (k + self.phase) / rate
        h = self._trade_hash(k)
        return _WireTrade(symbol, t, self.price(t), self._size(h), "buy" if h & 1 else "sell", k)

    def trade_range(self, start: float, end: float, rate: float) -> range:
        """Trade numbers k with start <= t_k < end."""
        return range(math.ceil(start * rate - self.phase), math.ceil(end * rate - self.phase))


def _round(price: float) -> float:
    return round(price, 2) if price >= 1 else round(price, 6)


class _WireTrade(msgspec.Struct, array_like=True, gc=False):
    """A trade on the simulated wire: [symbol, epoch seconds, price, size, side, trade id]."""

    symbol: str
    t: float
    price: float
    size: float
    side: str
    k: int


class _Trades(msgspec.Struct, tag_field="type", tag="trades", gc=False):
    data: list[_WireTrade]


class _Refused(msgspec.Struct, tag_field="type", tag="error", gc=False):
    symbol: str
    reason: str


class _Subscribed(msgspec.Struct, tag_field="type", tag="subscribed", gc=False):
    symbol: str


class _Heartbeat(msgspec.Struct, tag_field="type", tag="heartbeat", gc=False):
    pass


_Message = _Trades | _Refused | _Subscribed | _Heartbeat
_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(_Message).decode


class _Feed:
    """The in-process stand-in for a WebSocket: `send`, `recv`, async iteration, `close`."""

    def __init__(self, provider: SimulatedProvider) -> None:
        self._provider = provider
        self._clock = provider.clock
        self._subscribed: set[str] = set()
        self._outbox: deque[bytes] = deque()
        self._cursor = self._clock()
        self._last_sent = time.monotonic()
        self._closed = False

    async def send(self, message: str) -> None:
        request = json.loads(message)
        known = set(self._provider.symbols())
        for symbol in request.get("symbols", []):
            if request.get("op") == "unsubscribe":
                self._subscribed.discard(symbol)
            elif symbol in known:
                self._subscribed.add(symbol)
                self._outbox.append(_ENCODE(_Subscribed(symbol)))
            else:
                self._outbox.append(_ENCODE(_Refused(symbol, f"unknown symbol {symbol}")))

    async def recv(self) -> bytes:
        while True:
            if self._closed:
                raise ConnectionError("simulated feed closed")
            if self._outbox:
                return self._outbox.popleft()
            if self._clock() - self._cursor < _MAX_CATCH_UP:  # else catching up: no pause
                await asyncio.sleep(self._provider.BATCH_SECONDS)
            end = min(self._clock(), self._cursor + _MAX_CATCH_UP)
            trades = self._provider.wire_trades(sorted(self._subscribed), self._cursor, end)
            self._cursor = max(self._cursor, end)
            now = time.monotonic()
            if trades or now - self._last_sent >= 1.0:
                self._last_sent = now
                return _ENCODE(_Trades(trades) if trades else _Heartbeat())

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> bytes:
        return await self.recv()

    async def close(self) -> None:
        self._closed = True


class SimulatedProvider(LiveDataProvider):
    name = "SIMULATED"
    RATE_LIMIT = (1000, 1.0)
    IDLE_TIMEOUT = 5.0  # the feed says something at least once a second
    HEARTBEAT_INTERVAL = 30.0
    BATCH_SECONDS = 0.05
    CONFIGURABLE: ClassVar[dict[str, Setting]] = {
        "symbols": Setting(
            "str",
            "SIM/BTC,SIM/ETH,SIM/SOL,ACME,GLOBEX,INITECH",
            "symbols on offer, comma separated",
        ),
        "symbol_count": Setting(
            "int",
            0,
            "when above 0, offer this many generated symbols SIM0001... instead of the list",
            min=0,
            max=100_000,
        ),
        "ticks_per_second": Setting(
            "float", 20.0, "trades per second per symbol", min=0.01, max=10_000
        ),
        "seed": Setting("int", 42, "the same seed gives the same market"),
    }
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._paths: dict[str, _Path] = {}
        self._turn = asyncio.Lock()

    def symbols(self) -> list[str]:
        count = int(self.pref("symbol_count") or 0)
        if count > 0:
            return [f"SIM{n:04d}" for n in range(1, count + 1)]
        return [s.strip() for s in str(self.pref("symbols")).split(",") if s.strip()]

    def _path(self, symbol: str) -> _Path:
        path = self._paths.get(symbol)
        if path is None:
            digest = hashlib.blake2b(f"{self.pref('seed')}:{symbol}".encode(), digest_size=8)
            path = self._paths[symbol] = _Path(int.from_bytes(digest.digest(), "big"))
        return path

    @property
    def rate(self) -> float:
        rate = float(self.pref("ticks_per_second"))
        if rate <= 0:
            raise ValueError("ticks_per_second must be above 0")
        return rate

    def trades(self, symbol: str, start: float, end: float) -> list[Tick]:
        """The trades of `symbol` at epoch seconds in [start, end), oldest first."""
        path, rate = self._path(symbol), self.rate
        return [path.trade(symbol, k, rate) for k in path.trade_range(start, end, rate)]

    def wire_trades(self, symbols: list[str], start: float, end: float) -> list[_WireTrade]:
        """The trades of `symbols` in [start, end), symbol after symbol, as the simulated feed
        sends them."""
        rate = self.rate
        return [
            path.wire_trade(symbol, k, rate)
            for symbol in symbols
            for path in (self._path(symbol),)
            for k in path.trade_range(start, end, rate)
        ]

    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        return [
            SymbolInfo(
                symbol=s,
                name=f"Simulated {s}",
                exchange="SIMULATED",
                asset_class="crypto" if "/" in s else "equity",
                provider_id=s,
            )
            for s in self.symbols()
        ]

    async def get_history(
        self, sym: str, start: datetime, end: datetime, interval: Interval
    ) -> AsyncIterator[Bar]:
        """Closed bars on the same path as the live trades: exact when a bar holds at most
        32 trades, otherwise open and close exact and high, low and volume estimated from 32
        evenly spaced ones.

        This is CPU work on the event loop (about a second for a year of daily bars), so it
        runs in slices of at most `_SLICE_SECONDS`, one slice of one series at a time per
        provider: many series backfilling at once cost the loop one slice per turn, and a
        console stays responsive to keys meanwhile."""
        if sym not in self.symbols():
            raise ValueError(f"SIMULATED has no symbol {sym!r}")
        now = self.clock()
        pending = [
            s for s in interval.starts(start, end) if interval.next_start(s).timestamp() <= now
        ]  # closed bars only
        pending.reverse()
        while pending:
            async with self._turn:
                bars = self._bars(sym, interval, pending, time.perf_counter() + _SLICE_SECONDS)
                await asyncio.sleep(0)  # a turn of the loop for others; other series wait
            for bar in bars:
                yield bar

    def _bars(
        self, sym: str, interval: Interval, pending: list[datetime], deadline: float
    ) -> list[Bar]:
        """Bars for the starts popped off the end of `pending`, until `deadline` passes."""
        path, rate = self._path(sym), self.rate
        out: list[Bar] = []
        while pending and time.perf_counter() < deadline:
            bar_start = pending.pop()
            ks = path.trade_range(
                bar_start.timestamp(), interval.next_start(bar_start).timestamp(), rate
            )
            if not ks:
                continue
            if len(ks) <= _SAMPLES:
                trades = [path.trade(sym, k, rate) for k in ks]
                prices = [t.price for t in trades]
                volume = sum(t.size for t in trades)
            else:
                step = (len(ks) - 1) / (_SAMPLES - 1)
                picks = [ks[round(i * step)] for i in range(_SAMPLES)]
                prices = [path.price((k + path.phase) / rate) for k in picks]
                volume = round(len(ks) * sum(map(path.trade_size, picks)) / _SAMPLES, 6)
            out.append(
                Bar(
                    ts=bar_start,
                    open=prices[0],
                    high=max(prices),
                    low=min(prices),
                    close=prices[-1],
                    volume=volume,
                    symbol=sym,
                    trades=len(ks),
                    interval=interval,
                )
            )
        return out

    async def _connect(self) -> _Feed:
        return _Feed(self)

    async def _subscribe(self, interval: Interval, symbols: list[str]) -> dict[str, Any]:
        return {"op": "subscribe", "symbols": symbols}

    async def _unsubscribe(self, symbols: list[str]) -> dict[str, Any]:
        return {"op": "unsubscribe", "symbols": symbols}

    async def _parse_message(self, message: str | bytes) -> list[Tick | SubscriptionRefused]:
        decoded = _DECODE(message)
        if type(decoded) is _Trades:
            return [
                Tick(w.symbol, datetime.fromtimestamp(w.t, UTC), w.price, w.size, w.side, w.k)
                for w in decoded.data
            ]
        if type(decoded) is _Refused:
            return [SubscriptionRefused(symbol=decoded.symbol, reason=decoded.reason)]
        return []
