"""What alerts cost the live path: the same trades routed with no rules and with 1,000 rules,
in one process, as a ratio (a busy machine moves both runs alike; absolute times do not hold).

The live path here is what a live session does in the engine's process for each message: the
bundled KRAKEN provider's `_parse_message` on a v2 trade message, the router (duplicate check,
tick rows, the bus), the bar aggregator, the engine's pump noting quotes for attached consoles
and the writer storing every tick in `live_ticks` (a throw-away embedded PostgreSQL; the
server's own CPU is not counted, the writer's is). The WebSocket and the socket reads are left
out, so the real path costs more than this baseline and the true share of alerts is smaller
than the one printed. With rules, the evaluator listens on the bus as the engine's alert
service does (called inside `publish`).

Rules (`--rules`, default 1000): 90 % price levels above/below on random symbols, 1 to 5 %
from their price (as people set them; trades do cross some), 5 % moves within a window on one
symbol each, and the rest on events that are not trades (stale, gaps, providers, backfills),
among them one stale rule over every series, which makes every trade note its time.
Runs alternate, `--rounds` of each; the median of the per-round ratios is printed, and the
ratio of the fastest run of each kind (the least disturbed by other work on the machine).
On a busy machine the per-round ratios scatter widely; `evaluator_alone_share_pct` (the
evaluator run alone on the same messages, against the path without rules) scatters less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.common import report, scratch_database
from quasar_tui.core.intervals import Interval
from quasar_tui.engine.aggregator import BarAggregator
from quasar_tui.engine.alerts.evaluator import Evaluator, Target, series_key
from quasar_tui.engine.events import AlertFired, EventBus, TradesRead
from quasar_tui.engine.live_router import RecordRouter, SessionStats
from quasar_tui.engine.live_subscriptions import SubscriptionSet
from quasar_tui.engine.lock import EngineOwner
from quasar_tui.engine.publisher import Publisher
from quasar_tui.engine.trade_ids import TradeIds
from quasar_tui.engine.writer import Writer
from quasar_tui.providers.kraken import KrakenProvider
from quasar_tui.registry.alerts import AlertRule, Kind
from quasar_tui.sdk import ProviderContext
from quasar_tui.sdk.models import Tick
from quasar_tui.store.database import Database

PROVIDER = "BENCH"


def market(symbols: int, messages: int, batch: int, seed: int) -> list[list[Tick]]:
    """Random-walk trades, `batch` a message, pair after pair, ids increasing."""
    rng = random.Random(seed)
    prices = {f"S{i:04d}": 10.0 ** rng.uniform(1, 4) for i in range(symbols)}
    names = list(prices)
    start = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    out: list[list[Tick]] = []
    trade = 0
    for m in range(messages):
        symbol = names[m % symbols]
        ticks = []
        for _ in range(batch):
            trade += 1
            prices[symbol] *= 1 + rng.gauss(0, 0.0005)
            ts = start + timedelta(milliseconds=trade)
            ticks.append(Tick(symbol, ts, round(prices[symbol], 4), 1.0, trade_id=trade))
        out.append(ticks)
    return out


def rule(rule_id: int, kind: Kind, **fields: object) -> AlertRule:
    base: dict[str, object] = {
        "id": rule_id,
        "kind": kind,
        "target": None,
        "level": None,
        "percent": None,
        "window_s": None,
        "factor": None,
        "bars": None,
        "interval": None,
        "stale_s": None,
        "hysteresis": 0.5,
        "cooldown_s": 300,
        "webhook_url": None,
        "signed": False,
        "command": None,
        "command_timeout_s": 10,
        "enabled": True,
        "created_at": datetime.now(UTC),
    }
    return AlertRule(**{**base, **fields})  # type: ignore[arg-type]


def rules(count: int, first: dict[str, float], seed: int) -> list[tuple[AlertRule, Target]]:
    rng = random.Random(seed + 1)
    names = list(first)
    made: list[tuple[AlertRule, Target]] = []
    others: list[tuple[Kind, dict[str, object]]] = [
        ("stale", {"stale_s": 60}),
        ("gap", {}),
        ("provider", {}),
        ("backfill", {}),
    ]
    for i in range(1, count + 1):
        symbol = rng.choice(names)
        key = series_key(PROVIDER, symbol)
        share = i / count
        if share <= 0.9:
            up = rng.random() < 0.5
            level = first[symbol] * (1 + rng.uniform(0.01, 0.05) * (1 if up else -1))
            kind: Kind = "above" if up else "below"
            made.append((rule(i, kind, target=key, level=level), Target(key)))
        elif share <= 0.95:
            made.append((rule(i, "change", target=key, percent=2.0, window_s=300), Target(key)))
        else:
            other, fields = others[i % len(others)]
            made.append((rule(i, other, **fields), Target(None)))
    return made


def wire(trades: list[list[Tick]]) -> list[bytes]:
    """The messages as Kraken's v2 trade channel sends them."""
    return [
        json.dumps(
            {
                "channel": "trade",
                "type": "update",
                "data": [
                    {
                        "symbol": t.symbol,
                        "side": "buy",
                        "price": t.price,
                        "qty": t.size,
                        "ord_type": "market",
                        "trade_id": t.trade_id,
                        "timestamp": t.ts.isoformat().replace("+00:00", "Z"),
                    }
                    for t in message
                ],
            }
        ).encode()
        for message in trades
    ]


async def one_run(
    db: Database, messages: list[bytes], symbols: list[str], evaluator: Evaluator | None
) -> float:
    """CPU seconds to take every message through the live path (and the alerts), until the
    last tick is committed."""
    await db.execute("TRUNCATE live_ticks")
    kraken = KrakenProvider(ProviderContext())
    bus = EventBus()
    writer = Writer(db, bus)
    subs = SubscriptionSet()
    subs.replace({s: [Interval.M1] for s in symbols})
    aggregator = BarAggregator(PROVIDER, {s: [Interval.M1] for s in symbols})
    router = RecordRouter(
        PROVIDER,
        subs,
        TradeIds(),
        aggregator,
        writer,
        bus,
        SessionStats(),
        store_ticks=True,
        on_refused=lambda _r: None,
    )
    now = datetime.now(UTC)
    owner = EngineOwner("bench", 0, "daemon", now, now)
    publisher = Publisher(None, owner, dict)  # type: ignore[arg-type]  # only notes quotes
    pump = bus.subscribe(maxsize=50_000, kinds=(TradesRead,))
    if evaluator is not None:
        bus.listen((TradesRead,), evaluator.on_trades)
    parse = kraken._parse_message
    await writer.start()
    started = time.process_time()
    for message in messages:
        await router.route(await parse(message))
        for event in pump.drain():
            assert isinstance(event, TradesRead)
            publisher.note_ticks(event.provider, event.ticks)
    await writer.flush("live_ticks")
    spent = time.process_time() - started
    await writer.stop()
    return spent


def evaluate_only(events: list[TradesRead], evaluator: Evaluator) -> float:
    """CPU seconds of the evaluator alone on the same messages, already parsed."""
    started = time.process_time()
    for event in events:
        evaluator.on_trades(event)
    return time.process_time() - started


def evaluator_for(made: list[tuple[AlertRule, Target]], symbols: list[str]) -> Evaluator:
    fired: list[AlertFired] = []  # what the alert service keeps for recording
    evaluator = Evaluator(made, {}, lambda: datetime.now(UTC), fired.append)
    now = time.time()
    for r, target in made:
        if r.kind == "stale":
            for s in [target.key] if target.key else [series_key(PROVIDER, x) for x in symbols]:
                evaluator.add_stale(r, s, now)
    return evaluator


async def run(args: argparse.Namespace) -> dict[str, object]:
    trades = market(args.symbols, args.messages, args.batch, args.seed)
    first: dict[str, float] = {}
    for message in trades:
        for t in message:
            first.setdefault(t.symbol, t.price)
    symbols = sorted(first)
    made = rules(args.rules, first, args.seed)
    messages = wire(trades)
    ratios, bare, loaded, alone = [], [], [], []
    events = [TradesRead(PROVIDER, ticks) for ticks in trades]
    async with scratch_database() as db:
        await one_run(db, messages[:2000], symbols, None)  # warm up both paths
        await one_run(db, messages[:2000], symbols, evaluator_for(made, symbols))
        for _ in range(args.rounds):
            without = await one_run(db, messages, symbols, None)
            with_rules = await one_run(db, messages, symbols, evaluator_for(made, symbols))
            bare.append(without)
            loaded.append(with_rules)
            ratios.append(with_rules / without)
            alone.append(evaluate_only(events, evaluator_for(made, symbols)))
    ticks = args.messages * args.batch
    ratio = statistics.median(ratios)
    return {
        "rules": args.rules,
        "symbols": args.symbols,
        "trades": ticks,
        "rounds": args.rounds,
        "cost_ratio_median": round(ratio, 4),
        "cost_ratio_of_fastest_runs": round(min(loaded) / min(bare), 4),
        "alerts_share_of_live_path_pct": round((ratio - 1) * 100, 2),
        "ratios": [round(r, 4) for r in ratios],
        "evaluator_alone_share_pct": round(
            statistics.median(alone) / statistics.median(bare) * 100, 2
        ),
        "us_per_trade_without": round(statistics.median(bare) / ticks * 1e6, 3),
        "us_per_trade_with": round(statistics.median(loaded) / ticks * 1e6, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10, help="trades per message")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--seed", type=int, default=7)
    figures = asyncio.run(run(parser.parse_args()))
    print(f"alerts add {figures['alerts_share_of_live_path_pct']} % to the live path")
    report(figures)


if __name__ == "__main__":
    main()
