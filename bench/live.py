"""Live trades from a loopback Kraken v2 feed through a running engine into PostgreSQL.

Set-up: the bundled KRAKEN provider pointed (preferences `ws_url`, `rest_url`) at the tests'
Kraken fakes, run in a process of their own (bench/kraken_feed.py); its assets refreshed from
the fake's AssetPairs; one live 1min subscription per pair (500 by default), all through the
registry and subscription calls the CLI uses. The engine runs as the daemon runs it: one
Kraken session, the default writer, real time. Only the session's grace is set (`--grace`,
1 s; the engine's default is 2 s): Kraken's trades come over one ordered connection within
milliseconds, and the figure beyond the grace is printed so any grace can be judged.

The run: the feed sends `--batch` trades a message, pair after pair, as fast as the engine
takes them, for `--duration` seconds. "Takes" means committed: the feed keeps at most
`--window` trades sent but not yet in live_ticks, since the kernel's socket buffers alone would
queue tens of seconds of trades and the figures would measure them, not the engine. Bars are
1min, the shortest interval there is, so the run is placed in time:
- it starts no earlier than the first minute the engine observes completely (a session drops
  the bar it joined mid-way as partial and fills it from REST history), so every bar of the run
  is a live bar;
- it straddles a minute boundary: the bar closing mid-run is written while the feed is at full
  speed (it is also the first bar the writer writes, so it opens its connection), and the bar
  open at the end is written at the next boundary (the final close). Latency is measured over
  both, 2 x pairs bars with the defaults.

Figures (printed as one JSON object, the last line):
- messages/s and trades/s sent: what the feed got through, paced by the engine.
- ticks/s sustained: rows counted in live_ticks / (first send to the commit of the last tick).
- ticks lost: trades sent minus rows counted in live_ticks (must be 0).
- bars differing: live_data bars missing, extra or unequal to the bars computed from the
  trades sent (must be 0), and the session's late trades: dropped, or come after their bar was
  written and the bars rebuilt for them (bars close by the feed's time, so an engine behind
  its feed has none).
- latency after close, p50/p99: per bar, the wall time at which the writer reported the bar's
  COPY committed (BarsWritten, noted as the writer publishes it) minus the bar's end. Trades
  are stamped with their send time, so this is also the time from the bar's last tick being
  sent to the bar being committed, less the time the bar was still open. It includes the
  grace; the p99 beyond the grace is printed too.
- tick commit lag: send to commit in live_ticks, from each committed batch's newest tick.
- cpu_cores: cores used during the run by the engine (this process), its provider hosts, the
  feed, PostgreSQL and the whole machine (other work on it included), and the cores a virtual
  machine's hypervisor took from it ("stolen": on the project's machine 0.1-0.6 of its two,
  varying from minute to minute, which moves ticks/s from run to run); engine CPU per tick is
  the efficiency figure least disturbed by a busy machine.

`--way` says where the provider code runs: in its sandboxed host, as the engine runs it
("host"), in the engine's process, the baseline from before the sandbox ("in-process"), or
both, one after the other in this process tree ("both", the default), printing each run's
figures and the host's ticks/s as a ratio of the in-process ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import psutil

from bench.common import report, scratch_database
from bench.kraken_feed import WINDOW_WAIT, FeedProcess, PumpReport, pair_symbol, trade_values
from quasar_tui.engine import provider_pool
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.events import BarsWritten, Event, EventBus
from quasar_tui.engine.writer import Writer
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sandbox import loader
from quasar_tui.sandbox.client import HostSpec
from quasar_tui.sandbox.hosted import HostHealth, HostOptions
from quasar_tui.sdk.base import DataProvider
from quasar_tui.sdk.context import ProviderContext
from quasar_tui.sdk.http import HttpClient

PROVIDER = "KRAKEN"
SUBSCRIBE_MARGIN = 1.0  # the session trusts a subscription this long after sending it
BAR = 60
Bars = dict[tuple[str, datetime], tuple]


class CommitClock(EventBus):
    """The writer's bus: notes the wall time at which the writer reports rows committed,
    counts committed ticks into the feed's window, and passes every event on to the engine's
    bus. Only the writer publishes here, so ticks on the engine's bus pay nothing for it."""

    def __init__(self, engine_bus: EventBus, committed: Synchronized) -> None:
        super().__init__()
        self.engine_bus = engine_bus
        self.committed = committed
        self.bars: dict[str, list[tuple[float, datetime]]] = defaultdict(list)
        self.tick_lags: list[float] = []
        self.last_ticks_commit = 0.0

    def publish(self, event: Event) -> None:
        if type(event) is BarsWritten and event.provider == PROVIDER:
            now = time.time()
            if event.table == "live_data":
                self.bars[event.symbol].append((now, event.last_ts))
            elif event.table == "live_ticks":
                self.last_ticks_commit = now
                self.committed.value += event.count
                self.tick_lags.append(now - event.last_ts.timestamp())
        self.engine_bus.publish(event)

    def committed_at(self, symbol: str, ts: datetime) -> float | None:
        """When the bar of `symbol` starting at `ts` was committed, if it was."""
        return next((at for at, last in self.bars.get(symbol, ()) if last >= ts), None)


class InProcess:
    """The baseline: the provider's instance made in the engine's process from the same spec
    a host gets, standing where the engine keeps its `HostedProvider`. The engine's live
    session sees a provider instance, not a host, and runs the feed loop here (`LocalFeed`)."""

    def __init__(self, spec: HostSpec, options: HostOptions | None = None) -> None:
        self.spec = spec
        self.state = "running"
        self._instance: DataProvider | None = None

    async def start(self) -> None:
        spec = self.spec
        info = loader.load_class(
            spec.source, loader.sha256_hex(spec.source.encode()), provider=spec.name
        )
        defaults = {key: s.default for key, s in info.cls.settings().items()}
        context = ProviderContext(
            secrets=spec.secrets,
            preferences={**defaults, **spec.preferences},
            http=HttpClient(info.cls.RATE_LIMIT, info.cls.CONCURRENCY),
        )
        self._instance = info.cls(context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._instance, name)

    def health(self) -> HostHealth:
        return HostHealth("in process", "none", 0, None, None, None, None)


@contextlib.contextmanager
def provider_code_runs(way: str) -> Any:
    """Providers run in their hosts ("host"), or in the engine's process ("in-process")."""
    if way == "host":
        yield
        return
    hosted = provider_pool.HostedProvider
    provider_pool.HostedProvider = InProcess  # type: ignore[misc, assignment]
    try:
        yield
    finally:
        provider_pool.HostedProvider = hosted  # type: ignore[misc]


class CpuMeter:
    """CPU seconds used so far by this process (the engine), its provider hosts, the feed
    process, the PostgreSQL server (postmaster and its children) and the whole machine."""

    def __init__(self, feed_pid: int, backend_pid: int) -> None:
        self.engine = psutil.Process()
        self.feed = psutil.Process(feed_pid)
        self.postmaster = psutil.Process(psutil.Process(backend_pid).ppid())

    def hosts(self) -> float:
        used = 0.0
        for proc in self.engine.children():
            if proc.pid != self.feed.pid:
                with contextlib.suppress(psutil.NoSuchProcess):
                    used += sum(proc.cpu_times()[:2])
        return used

    def sample(self) -> dict[str, float]:
        pg = 0.0
        for proc in [self.postmaster, *self.postmaster.children()]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a backend that just ended
                pg += sum(proc.cpu_times()[:2])
        machine = psutil.cpu_times()
        return {
            "wall": time.time(),
            "engine": sum(self.engine.cpu_times()[:2]),
            "hosts": self.hosts(),
            "feed": sum(self.feed.cpu_times()[:2]),
            "postgres": pg,
            "machine": machine.user + machine.nice + machine.system + machine.irq + machine.softirq,
            "stolen": getattr(machine, "steal", 0.0),
        }


def cores_used(first: dict[str, float], last: dict[str, float]) -> dict[str, float]:
    wall = last["wall"] - first["wall"]
    return {k: round((last[k] - first[k]) / wall, 2) for k in first if k != "wall"}


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def plan_start(observed_from: float, duration: float) -> float:
    """The wall time to start trading: at or after the first bar observed completely, with a
    bar boundary in the middle of the run."""
    first_full = (math.floor(observed_from / BAR) + 1) * BAR
    middle = math.ceil((first_full + duration / 2) / BAR) * BAR
    return middle - duration / 2


def expected_bars(sent: PumpReport) -> Bars:
    """(symbol, bar start) -> OHLCV and trade count, from the trades the feed sent."""
    values: dict[int, tuple[list[float], list[float]]] = {}
    bars: Bars = {}
    for (pair, minute), (first, last) in sent.ranges.items():
        prices, sizes = values.get(pair) or values.setdefault(pair, trade_values(pair))
        n = len(prices)
        span = [prices[i % n] for i in range(first, last + 1)]
        volume = sizes[first % n]
        for i in range(first + 1, last + 1):
            volume += sizes[i % n]  # summed in arrival order, as the aggregator does
        bars[(pair_symbol(pair), datetime.fromtimestamp(minute * BAR, UTC))] = (
            span[0],
            max(span),
            min(span),
            span[-1],
            volume,
            len(span),
        )
    return bars


async def stored_bars(engine: Engine) -> Bars:
    rows = await engine.db.fetch(
        "SELECT symbol, ts, open, high, low, close, volume, trades FROM live_data "
        "WHERE provider = $1 AND interval = '1min'",
        PROVIDER,
    )
    return {(r["symbol"], r["ts"]): tuple(r)[2:] for r in rows}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_figures(values: list[float], grace: float) -> dict[str, Any]:
    if not values:
        return {"bars": 0}
    return {
        "bars": len(values),
        "p50_s": round(percentile(values, 50), 3),
        "p99_s": round(percentile(values, 99), 3),
        "max_s": round(max(values), 3),
        "p99_beyond_grace_s": round(percentile(values, 99) - grace, 3),
    }


async def prepare(engine: Engine, feed: FeedProcess, symbols: list[str]) -> None:
    """The KRAKEN provider pointed at the feed, its assets listed, one live sub per pair."""
    registry = engine.registry
    await registry.ensure_bundled()
    await registry.set_preferences(PROVIDER, {"ws_url": feed.ws_url, "rest_url": feed.rest_url})
    instance = await registry.load(PROVIDER)
    try:
        await AssetStore(engine.db).refresh(PROVIDER, instance)
    finally:
        await instance.aclose()
    await SubscriptionStore(engine.db).add(PROVIDER, symbols, "1min", "live")


async def sample_at(meter: CpuMeter, when: float) -> dict[str, float]:
    await asyncio.sleep(max(0.0, when - time.time()))
    return meter.sample()


async def wait_stored(committed: Synchronized, ticks: int) -> None:
    """Until `ticks` trades are committed to live_ticks (60 s at most)."""
    for _ in range(3000):
        if committed.value >= ticks:
            return
        await asyncio.sleep(0.02)


async def wait_committed(clock: CommitClock, bars: Bars, deadline: float) -> None:
    while time.time() < deadline:
        if all(clock.committed_at(s, ts) is not None for s, ts in bars):
            return
        await asyncio.sleep(0.2)


async def run(args: argparse.Namespace, way: str) -> dict[str, Any]:
    symbols = [pair_symbol(i) for i in range(args.symbols)]
    feed = FeedProcess(args.symbols)
    data_dir = Path(tempfile.mkdtemp(prefix="quasar-bench-live-"))
    try:
        await feed.start()
        async with scratch_database() as db:
            bus = EventBus()
            clock = CommitClock(bus, feed.committed)
            engine = Engine.create(
                db,
                data_dir=data_dir,
                mode="daemon",
                bus=bus,
                writer=Writer(db, clock),
                live_options={"grace": args.grace, "subscribe_margin": SUBSCRIBE_MARGIN},
            )
            await prepare(engine, feed, symbols)
            meter = CpuMeter(feed.pid, await db.fetchval("SELECT pg_backend_pid()"))
            with provider_code_runs(way):
                await engine.start()
            try:
                await feed.subscribed()
                start = plan_start(time.time() + SUBSCRIBE_MARGIN, args.duration)
                say(
                    f"{len(symbols)} pairs subscribed; trading starts in "
                    f"{start - time.time():.0f} s, for {args.duration:g} s"
                )
                first_cpu = asyncio.create_task(sample_at(meter, start))
                sent = await feed.pump(start, args.duration, args.batch, args.window)
                await wait_stored(feed.committed, sent.trades)
                cpu = cores_used(await first_cpu, meter.sample())
                expected = expected_bars(sent)
                final_close = math.ceil(sent.last_send / BAR) * BAR
                say(
                    f"sent {sent.trades} trades; waiting for the bars closing at "
                    f"{datetime.fromtimestamp(final_close, UTC):%H:%M:%S}"
                )
                await wait_committed(clock, expected, final_close + args.grace + 30)
                counters = engine.stats()["live_counters"][PROVIDER]
            finally:
                await engine.stop()
            stored = await db.fetchval(
                "SELECT count(*) FROM live_ticks WHERE provider = $1", PROVIDER
            )
            bars = await stored_bars(engine)
    finally:
        await feed.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    differing = sum(
        1 for key in expected.keys() | bars.keys() if expected.get(key) != bars.get(key)
    )
    mid_run: list[float] = []
    final: list[float] = []
    for symbol, ts in expected:
        end = ts.timestamp() + BAR
        at = clock.committed_at(symbol, ts)
        if at is not None:
            (mid_run if end < sent.last_send else final).append(at - end)
    sending = sent.last_send - sent.first_send
    sustained = clock.last_ticks_commit - sent.first_send
    lags = clock.tick_lags
    return {
        "bench": "live",
        "provider_code": way,
        "pairs": args.symbols,
        "duration_s": round(sending, 2),
        "trades_per_message": args.batch,
        "window": args.window,
        "grace_s": args.grace,
        "messages_per_s": round(sent.messages / sending),
        "trades_sent_per_s": round(sent.trades / sending),
        "ticks_per_s_sustained": round(stored / sustained) if sustained > 0 else 0,
        "ticks_sent": sent.trades,
        "ticks_stored": stored,
        "ticks_lost": sent.trades - stored,
        "tick_commit_lag_s": {
            "p50": round(percentile(lags, 50), 3),
            "p99": round(percentile(lags, 99), 3),
        }
        if lags
        else None,
        "feed_window_full_s": round(sent.waits * WINDOW_WAIT, 1),
        "cpu_cores": cpu,
        "engine_cpu_us_per_tick": round(cpu["engine"] * sustained / stored * 1e6, 2)
        if stored
        else None,
        "engine_and_hosts_cpu_us_per_tick": round(
            (cpu["engine"] + cpu["hosts"]) * sustained / stored * 1e6, 2
        )
        if stored
        else None,
        "bars_expected": len(expected),
        "bars_differing": differing,
        "late_trades": {
            k: counters[k]
            for k in ("late_dropped", "late_corrected", "bars_corrected", "history_filled")
        },
        "latency_after_close": latency_figures(mid_run + final, args.grace),
        "latency_after_close_mid_run": latency_figures(mid_run, args.grace),
        "latency_after_close_final": latency_figures(final, args.grace),
        "targets": {
            "ticks_per_s_sustained": 50_000,
            "latency_p99_s": 2.0,
            "ticks_lost": 0,
            "bars_differing": 0,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500, help="pairs trading (default 500)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of trading")
    parser.add_argument("--batch", type=int, default=10, help="trades per message")
    parser.add_argument(
        "--window",
        type=int,
        default=100_000,
        help="trades in flight at most, sent but not committed (default 100000)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=1.0,
        help="seconds a closed bar waits for late trades (default 1.0)",
    )
    parser.add_argument(
        "--way",
        choices=("both", "host", "in-process"),
        default="both",
        help="where provider code runs: its sandboxed host, the engine's process, or both "
        "one after the other (default both)",
    )
    args = parser.parse_args()
    if args.way != "both":
        report(asyncio.run(run(args, args.way)))
        return
    runs = {}
    for way in ("in-process", "host"):
        runs[way] = asyncio.run(run(args, way))
        print(json.dumps(runs[way], default=str), flush=True)
    base = runs["in-process"]["ticks_per_s_sustained"]
    ratio = runs["host"]["ticks_per_s_sustained"] / base if base else None
    report(
        {
            "bench": "live both ways",
            "ticks_per_s_sustained": {way: r["ticks_per_s_sustained"] for way, r in runs.items()},
            "host_over_in_process": None if ratio is None else round(ratio, 3),
            "ticks_lost": {way: r["ticks_lost"] for way, r in runs.items()},
            "bars_differing": {way: r["bars_differing"] for way, r in runs.items()},
            "target_host_over_in_process": 0.8,
        }
    )


if __name__ == "__main__":
    main()
