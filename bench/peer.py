"""Quasar against a peer, cryptofeed, on the same feed into the same PostgreSQL.

The feed: a loopback Binance spot stream of aggregate trades, one trade a message (the usual
shape of Binance's and Coinbase's trade streams), `--symbols` symbols (100), offered at a fixed
rate (`--rates`, 20k and 30k trades/s by default) for `--duration` seconds, in a process of its
own (bench/binance_feed.py, tests/fakes/binance.py). What a client does not take in time waits
in its socket, as it would from the exchange.

The clients, one at a time, each into a fresh database of one embedded PostgreSQL server:
- cryptofeed (the version pinned by the `peer` extra) with its `TradePostgres` backend, as its
  examples run it (bench/peer_cryptofeed.py says how it is pointed at the loopback feed);
- `quasar --daemon` with a third-party style provider for the same stream
  (bench/providers/binance_aggtrades.py), added, configured and subscribed (1min live) as a
  user would, storing every trade in live_ticks and its bars in live_data.

Figures per rate and client (one JSON object, the last line):
- sent/s: what the feed got out (below the offered rate when the client's socket was full);
- stored/s within the offer: rows stored by the end of the offer / its duration. A client that
  keeps up but commits in batches (Quasar's writer: ticks every 0.05 s or 5,000 rows) still has its
  last batch to commit when the offer ends, so this undercounts it slightly;
- stored/s to drain: rows stored once the backlog drained (or `--drain` seconds after the
  offer) / (the offer's duration + the time it took to drain). It counts every trade a client
  stores, late or not, and charges it the time it needed;
- timeline: every `--sample` seconds, rows stored and the backlog (sent but not stored yet);
- after the offer, how long the backlog took to drain (polled every 0.1 s), and the trades
  never stored by then (lost, or still queued somewhere);
- CPU cores the client used during the offer (its own process, and for Quasar its provider
  host, a child process, apart), CPU microseconds per trade stored (from the offer's start to
  the drain's end), and peak RSS;
- the ratios of Quasar's figures to cryptofeed's, both ways of counting stored/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench.binance_feed import BinanceFeedProcess
from bench.common import report, scratch_database
from bench.daemon import MarketClock, Site, until
from bench.fakes_path import binance
from bench.peer_cryptofeed import TRADES_TABLE
from quasar_tui.engine.lock import engine_running
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.database import Database, with_database

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_FILE = ROOT / "bench" / "providers" / "binance_aggtrades.py"
READY_SECONDS = 120.0
DRAIN_POLL = 0.1  # seconds between counts while the backlog drains


@dataclass
class Client:
    """One client under test: its process, and how many trades it has stored so far."""

    name: str
    pid: int
    stored: Callable[[], Awaitable[int]]
    log: Path

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])

    def check_alive(self) -> None:
        if not psutil.pid_exists(self.pid) or psutil.Process(self.pid).status() == "zombie":
            raise SystemExit(f"peer benchmark: {self.name} exited:\n{self.tail()}")


class ProcessMeter:
    """CPU seconds of a process and of its children apart, and their peak RSS."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak_rss = 0

    def cpu(self) -> tuple[float, float]:
        """(the process, its children)."""
        used = [0.0, 0.0]
        for proc in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                used[proc is not self.process] += times.user + times.system
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
        return used[0], used[1]


async def measure(
    client: Client, feed: BinanceFeedProcess, symbols: int, args: argparse.Namespace, rate: float
) -> dict[str, Any]:
    """Offer `rate` trades/s to a subscribed client; sample what it stores."""
    await until(
        lambda: _following(feed, symbols, client),
        f"{client.name} following every stream",
        READY_SECONDS,
    )
    meter = ProcessMeter(client.pid)
    base = await client.stored()
    cpu0, began = meter.cpu(), time.monotonic()
    pump = asyncio.create_task(feed.pump(rate, args.duration))
    timeline: list[dict[str, float]] = []
    while not pump.done():
        await asyncio.wait([pump], timeout=args.sample)
        elapsed = time.monotonic() - began
        stored = await client.stored() - base
        timeline.append({"t": round(elapsed, 1), "stored": stored, "backlog": 0})
    sent = pump.result()
    offer_seconds = time.monotonic() - began
    cpu1 = meter.cpu()
    own, children = (after - before for after, before in zip(cpu1, cpu0, strict=True))
    stored_at_end = await client.stored() - base
    _backlogs(timeline, sent)
    drain_began = time.monotonic()
    stored_now, last_sample = stored_at_end, drain_began
    while stored_now < sent.messages and time.monotonic() - drain_began < args.drain:
        await asyncio.sleep(DRAIN_POLL)
        stored_now = await client.stored() - base
        if time.monotonic() - last_sample >= args.sample:
            last_sample = time.monotonic()
            timeline.append(
                {
                    "t": round(last_sample - began, 1),
                    "stored": stored_now,
                    "backlog": sent.messages - stored_now,
                }
            )
    drain_seconds = time.monotonic() - drain_began
    used = sum(meter.cpu()) - sum(cpu0)
    if stored_now < sent.messages:
        print(
            f"{client.name} did not store every trade; its log ends:\n{client.tail()}",
            file=sys.stderr,
        )
    return {
        "offered_per_s": rate,
        "sent_per_s": round(sent.messages / sent.seconds),
        "stored_per_s_within_offer": round(stored_at_end / offer_seconds),
        "stored_per_s_to_drain": round(stored_now / (offer_seconds + drain_seconds)),
        "backlog_at_offer_end": sent.messages - stored_at_end,
        "drained_in_s": round(drain_seconds, 2) if stored_now >= sent.messages else None,
        "not_stored_after_drain": sent.messages - stored_now,
        "cpu_cores": round((own + children) / offer_seconds, 2),
        "cpu_cores_process": round(own / offer_seconds, 2),
        "cpu_cores_children": round(children / offer_seconds, 2),
        "cpu_us_per_trade": round(used / max(1, stored_now) * 1e6, 1),
        "peak_rss_mib": round(meter.peak_rss / 2**20),
        "timeline": timeline,
    }


def _backlogs(timeline: list[dict[str, float]], sent: binance.PumpReport) -> None:
    """Fill in each sample's backlog from what the feed sent by then (whole seconds)."""
    cumulative = [0]
    for count in sent.per_second:
        cumulative.append(cumulative[-1] + count)
    for point in timeline:
        whole = min(int(point["t"]), len(cumulative) - 1)
        fraction = point["t"] - whole
        nxt = cumulative[min(whole + 1, len(cumulative) - 1)]
        sent_by = cumulative[whole] + (nxt - cumulative[whole]) * fraction
        point["backlog"] = max(0, round(sent_by - point["stored"]))


async def _following(feed: BinanceFeedProcess, symbols: int, client: Client) -> bool:
    client.check_alive()
    return await feed.following() >= symbols


async def run_cryptofeed(
    server: Database, feed: BinanceFeedProcess, rate: float, args: argparse.Namespace, name: str
) -> dict[str, Any]:
    await server.execute(f'CREATE DATABASE "{name}"')  # a name of this benchmark's own
    db = await asyncpg.connect(with_database(server.dsn, name))
    try:
        await db.execute(TRADES_TABLE)
        assert server.server.data_dir is not None
        log = server.server.data_dir / f"{name}.log"
        settings = {
            "ws_url": feed.ws_url,
            "rest_url": feed.rest_url,
            "symbols": [binance.symbol_name(i) for i in range(args.symbols)],
            "dsn": with_database(server.dsn, name),
            "log": str(log),
        }
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.peer_cryptofeed",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
                cwd=ROOT,
            )
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(settings) + "\n").encode())
        await proc.stdin.drain()
        proc.stdin.close()
        try:
            stored = partial(_count, db, "SELECT count(*) FROM trades")
            client = Client("cryptofeed", proc.pid, stored, log)
            return await measure(client, feed, args.symbols, args, rate)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    finally:
        await db.close()


async def run_quasar(
    server: Database, feed: BinanceFeedProcess, rate: float, args: argparse.Namespace, name: str
) -> dict[str, Any]:
    site = await Site.open(server, name)
    try:
        record = await site.registry.add(PROVIDER_FILE)
        await site.registry.set_preferences(
            record.name, {"ws_url": feed.ws_url, "rest_url": feed.rest_url}
        )
        await site.refresh_assets(record.name)
        symbols = [binance.symbol_name(i) for i in range(args.symbols)]
        await SubscriptionStore(site.db).add(record.name, symbols, "1min", "live")
        daemon = site.start_daemon(MarketClock(time.time()))
        await until(lambda: engine_running(site.db), "the daemon running", READY_SECONDS, daemon)
        client = Client(
            "quasar",
            daemon.pid,
            partial(
                _count, site.db, "SELECT count(*) FROM live_ticks WHERE provider = $1", record.name
            ),
            daemon.log,
        )
        try:
            return await measure(client, feed, args.symbols, args, rate)
        finally:
            await daemon.stop()
    finally:
        await site.close()


RUNNERS = {"cryptofeed": run_cryptofeed, "quasar": run_quasar}


async def _count(db: Database | asyncpg.Connection, query: str, *args: Any) -> int:
    return int(await db.fetchval(query, *args))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with scratch_database() as server:
        assert server.server.data_dir is not None
        cert, cert_key = binance.loopback_certificate(server.server.data_dir)
        os.environ["SSL_CERT_FILE"] = str(cert)  # the clients' processes trust the feed's wss
        feed = BinanceFeedProcess(args.symbols, (cert, cert_key))
        await feed.start()
        try:
            for rate in args.rates:
                key = f"{rate:g}"
                runs: dict[str, Any] = {
                    name: await RUNNERS[name](server, feed, rate, args, f"{name}_{key}")
                    for name in args.clients
                }
                if len(runs) == len(RUNNERS):
                    runs |= _ratios(runs["quasar"], runs["cryptofeed"])
                results[key] = runs
        finally:
            await feed.stop()
    return {
        "bench": "peer",
        "symbols": args.symbols,
        "duration_s": args.duration,
        "trades_per_message": 1,
        "cryptofeed": _version("cryptofeed"),
        "rates": results,
    }


def _ratios(quasar: dict[str, Any], cryptofeed: dict[str, Any]) -> dict[str, float]:
    """Quasar's figures over cryptofeed's: stored/s both ways (higher is better) and CPU per
    trade stored (lower is better)."""
    figures = ("stored_per_s_within_offer", "stored_per_s_to_drain", "cpu_us_per_trade")
    return {
        f"quasar_to_cryptofeed_{figure}": round(quasar[figure] / max(1, cryptofeed[figure]), 2)
        for figure in figures
    }


def _clients(text: str) -> list[str]:
    names = text.split(",")
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"no client {', '.join(unknown)} (there are {', '.join(RUNNERS)})"
        )
    return [n for n in RUNNERS if n in names]


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=100, help="symbols streamed (default 100)")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[20_000.0, 30_000.0],
        help="offered trades/s, comma separated (default 20000,30000)",
    )
    parser.add_argument(
        "--clients",
        type=_clients,
        default=list(RUNNERS),
        help="clients measured, comma separated (default cryptofeed,quasar; ratios need both)",
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of offer")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait after it")
    parser.add_argument("--sample", type=float, default=2.0, help="seconds between samples")
    report(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
