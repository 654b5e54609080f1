"""The fakes the fault drills serve from, with a record of exactly what they served.

`KrakenTrader`: the tests' Kraken WebSocket v2 and REST fakes on the drill's market clock, and a
trader making random trades on them. Every trade made is in `market.trades` (what REST history
serves); what was sent to a live connection is in `ws.served`, and what REST Trades answered
(the trades the daemon fetched because it missed them) in `rest.served_trades`.

Trades are only made between `QUIET` market seconds after each minute starts and `QUIET` before
it ends. The daemon's market clock runs `speed` times faster than real time, which shrinks the
engine's latency allowances (a trade must arrive within the 2 s grace after its bar closes; a
subscription is trusted 1 s after it is sent) to a fraction of a real second; the quiet edges
give both back, so a drill measures its fault and not the scheduler of a loaded machine.

`eodhd_served`: the historical bars a FakeEodhd put in its 200 answers, from its request log.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import partial

from bench.daemon import Daemon, MarketClock, Site, until
from bench.fakes_path import kraken_rest, kraken_ws

# isort: split
from fakes.eodhd import INTRADAY, PERIODS, FakeEodhd
from fakes.market import at

from quasar_tui.core.intervals import Interval
from quasar_tui.registry.subscriptions import SubscriptionStore

QUIET = 10.0  # market seconds without trades at each end of every minute
TRADE_EVERY = 0.05  # real seconds between rounds of trades
RESEND_EVERY = 40  # rounds between re-sends of recent trades (a client must not count them)
PROVIDER = "KRAKEN"

BarKey = kraken_ws.BarKey


def usd_pairs(count: int) -> dict[str, tuple[str, str, str, str]]:
    """`count` made-up USD pairs (V00/USD, V01/USD, ...) as REST AssetPairs lists them."""
    return {
        f"V{i:02d}ZUSD": (f"V{i:02d}USD", f"V{i:02d}/USD", f"V{i:02d}", "ZUSD")
        for i in range(count)
    }


class KrakenTrader:
    """Kraken fakes serving `subs` (symbol -> live intervals) and random trades on them."""

    def __init__(
        self,
        clock: MarketClock,
        subs: Mapping[str, set[Interval]],
        seed: int,
        pairs: dict[str, tuple[str, str, str, str]] | None = None,
    ) -> None:
        self.clock = clock
        self.subs = dict(subs)
        self.market = kraken_ws.KrakenMarket(clock, pairs)
        self.ws = kraken_ws.KrakenWSFake(self.market)
        self.rest = kraken_rest.KrakenRestFake(self.market)
        self.paused = False
        self._rng = random.Random(seed)
        self._prices = {s: 100.0 * (i + 1) for i, s in enumerate(sorted(self.subs))}
        self._task: asyncio.Task[None] | None = None

    async def start(self, site: Site) -> None:
        """Serve, point the KRAKEN provider here, refresh its assets, subscribe."""
        await self.ws.start()
        await self.rest.start()
        await site.registry.set_preferences(
            PROVIDER, {"ws_url": self.ws.url, "rest_url": self.rest.url, "channels": "trade"}
        )
        await site.refresh_assets(PROVIDER)
        store = SubscriptionStore(site.db)
        for interval in sorted(
            {iv for ivs in self.subs.values() for iv in ivs}, key=lambda iv: iv.seconds
        ):
            symbols = sorted(s for s, ivs in self.subs.items() if interval in ivs)
            await store.add(PROVIDER, symbols, interval.value, "live")

    async def stop(self) -> None:
        await self.halt()
        await self.ws.stop()
        await self.rest.stop()

    # -- trading -------------------------------------------------------------------------

    def begin(self) -> None:
        self.paused = False
        if self._task is None:
            self._task = asyncio.create_task(self._trade(), name="drill:trader")

    async def halt(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _trade(self) -> None:
        rng = self._rng
        rounds = 0
        while True:
            await asyncio.sleep(TRADE_EVERY)
            if self.paused:
                continue
            rounds += 1
            for symbol in sorted(self.subs):
                for _ in range(rng.randint(0, 2)):
                    ts = self.clock()
                    if not QUIET <= ts.timestamp() % 60 < 60 - QUIET:
                        continue
                    price = round(self._prices[symbol] * (1 + rng.gauss(0, 0.0005)), 2)
                    self._prices[symbol] = price
                    await self.ws.trade(
                        symbol,
                        price,
                        round(rng.uniform(0.001, 2), 4),
                        ts,
                        rng.choice(("buy", "sell")),
                    )
            made = self.market.trades[min(self.subs)]
            if rounds % RESEND_EVERY == 0 and made:
                await self.ws.resend(min(self.subs), made[-3:])

    async def trade_with(self, site: Site) -> Daemon:
        """Start a daemon on the drill's clock, and the trading once it has subscribed."""
        daemon = site.start_daemon(self.clock)
        await self.wait_subscribed(daemon)
        self.begin()
        return daemon

    async def wait_subscribed(self, daemon: Daemon, connects_before: int = 0) -> None:
        """Until a connection newer than `connects_before` is subscribed to every pair."""
        await until(lambda: self.ws.connects > connects_before, "a Kraken connection", 120, daemon)
        for symbol in self.subs:
            await until(
                partial(self._subscribed, symbol),
                f"a subscription to {symbol}",
                60,
                daemon,
            )

    async def _subscribed(self, symbol: str) -> bool:
        try:
            await asyncio.wait_for(self.ws.wait_subscribed(symbol), 0.5)
        except TimeoutError:
            return False
        return True

    async def catch_up(self, site: Site, daemon: Daemon) -> bool:
        """Pause trading until the daemon has stored every trade delivered so far (so trades
        in flight at a fault are not mistaken for lost ones); False if it never does."""
        self.paused = True
        delivered = len(self.delivered())
        return bool(
            await until(
                lambda: _at_least(site, delivered),
                "delivered ticks stored",
                30,
                daemon,
                required=False,
            )
        )

    async def finish(self, site: Site, daemon: Daemon, longest: Interval) -> bool:
        """Trade on to the end of a `longest` bar at least a minute away, stop trading, and
        wait for every bar to close, every gap to be filled and every delivered trade to be
        stored; True if they all were."""
        now = self.clock()
        end = longest.next_start(longest.floor(now))
        if (end - now).total_seconds() < 60 + QUIET:
            end = longest.next_start(end)
        await asyncio.sleep(self.clock.real((end - now).total_seconds() - QUIET))
        await self.halt()
        expected = self.expected_bars()

        async def settled() -> bool:
            return await self.stored_bars(site) == expected and await _at_least(
                site, len(self.delivered())
            )

        return bool(
            await until(
                settled, "every bar stored", 90 + self.clock.real(QUIET + 5), daemon, required=False
            )
        )

    # -- what was served -----------------------------------------------------------------

    def delivered(self) -> dict[tuple[str, int], tuple]:
        """Trades sent to a live connection or in an answer of REST Trades (where the daemon
        fetches the trades it missed): (symbol, trade id) -> (ts, price, size, side)."""
        made = {(t.symbol, t.trade_id): t for trades in self.market.trades.values() for t in trades}
        keys = self._sent_live() | self._sent_rest()
        return {k: (made[k].ts, made[k].price, made[k].qty, made[k].side) for k in keys}

    def fetched(self) -> int:
        """Trades served only by REST Trades, never on a live connection."""
        return len(self._sent_rest() - self._sent_live())

    def _sent_live(self) -> set[tuple[str, int]]:
        return {
            (item["symbol"], item["trade_id"])
            for _, message in self.ws.served
            if message.get("channel") == "trade"
            for item in message["data"]
        }

    def _sent_rest(self) -> set[tuple[str, int]]:
        return {(t.symbol, t.trade_id) for t in self.rest.served_trades}

    def delivered_out_of_order(self) -> int:
        """Trades first delivered after a newer trade of their pair: a re-send right after a
        reconnect brings trades made while the daemon was away behind newer ones."""
        newest: dict[str, int] = {}
        seen: set[tuple[str, int]] = set()
        late = 0
        for _, message in self.ws.served:
            if message.get("channel") != "trade":
                continue
            for item in message["data"]:
                symbol, trade_id = item["symbol"], item["trade_id"]
                if (symbol, trade_id) in seen:
                    continue
                seen.add((symbol, trade_id))
                late += trade_id < newest.get(symbol, trade_id)
                newest[symbol] = max(trade_id, newest.get(symbol, trade_id))
        return late

    def made(self) -> int:
        return sum(len(trades) for trades in self.market.trades.values())

    def expected_bars(self) -> dict[BarKey, tuple]:
        """OHLCV and trade count of every subscribed bar, from every trade made."""
        bars: dict[BarKey, tuple] = {}
        for symbol, intervals in self.subs.items():
            bars.update(kraken_ws.bars_from_trades(self.market.trades[symbol], intervals))
        return bars

    async def stored_bars(self, site: Site) -> dict[BarKey, tuple]:
        return await kraken_ws.stored_live_bars(site, PROVIDER)

    async def stored_ticks(self, site: Site) -> list[tuple[tuple[str, int], tuple]]:
        rows = await site.fetch(
            "SELECT symbol, seq, ts, price, size, side FROM live_ticks WHERE provider = $1",
            PROVIDER,
        )
        return [((r[0], r[1]), tuple(r)[2:]) for r in rows]

    def rest_fills(self) -> int:
        return len(self.rest.calls("OHLC"))


async def _at_least(site: Site, ticks: int) -> bool:
    stored = await site.fetchval("SELECT count(*) FROM live_ticks WHERE provider = $1", PROVIDER)
    return stored >= ticks


def eodhd_served(eodhd: FakeEodhd) -> dict[tuple[str, str, datetime], tuple]:
    """(symbol, interval, ts) -> (open, high, low, close, volume) of every bar in a 200 answer
    of /intraday or daily /eod."""
    served: dict[tuple[str, str, datetime], tuple] = {}
    for seen in eodhd.server.requests:
        kind, _, symbol = seen.path.removeprefix("/api/").partition("/")
        if seen.status != 200 or kind not in ("intraday", "eod"):
            continue
        if kind == "intraday":
            interval = INTRADAY[seen.query.get("interval", "5m")]
            start = datetime.fromtimestamp(int(seen.query["from"]), UTC)
            end = datetime.fromtimestamp(int(seen.query["to"]), UTC) + timedelta(seconds=1)
        else:
            interval = PERIODS[seen.query.get("period", "d")]
            if interval is not Interval.D1:
                raise ValueError("drills read daily /eod answers only")
            start = at(date.fromisoformat(seen.query["from"]))
            end = at(date.fromisoformat(seen.query["to"])) + timedelta(days=1)
        for ts, *values in eodhd.truth(symbol, interval, start, end):
            served[(symbol, interval.value, ts)] = tuple(values)
    return served


def eodhd_timeline(
    eodhd: FakeEodhd, served: Mapping[tuple[str, str, datetime], tuple]
) -> list[tuple[str, str, datetime]]:
    """Every bar the fake holds from the first to the last bar served, per series: a span the
    daemon never asked for shows up as a gap."""
    spans: dict[tuple[str, str], list[datetime]] = {}
    for symbol, interval, ts in served:
        span = spans.setdefault((symbol, interval), [ts, ts])
        span[0], span[1] = min(span[0], ts), max(span[1], ts)
    return [
        (symbol, interval, ts)
        for (symbol, interval), (first, last) in sorted(spans.items())
        for ts, *_ in eodhd.truth(symbol, Interval(interval), first, last + timedelta(seconds=1))
    ]


async def stored_history(site: Site, provider: str) -> list[tuple[tuple, tuple]]:
    rows = await site.fetch(
        "SELECT symbol, interval, ts, open, high, low, close, volume FROM historical_data "
        "WHERE provider = $1",
        provider,
    )
    return [((r[0], r[1], r[2]), tuple(r)[3:]) for r in rows]
