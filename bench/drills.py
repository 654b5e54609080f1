"""Fault drills: the real daemon through faults, then what was served against what is stored.

Each drill runs `quasar --daemon --dsn ...` (bench.daemon) as a subprocess on a database of its
own on one embedded PostgreSQL, against the tests' loopback fakes, injects its fault, stops the
daemon with SIGTERM and compares, row by row (bench.tally):

- feed_drops: a Kraken v2 feed (trades of BTC/USD at 1min and 5min, ETH/USD at 1min) cut
  `--drops` times by the fake dropping every connection. Trades made while the daemon is away
  are served again only by the Kraken REST fake's OHLC history, which the daemon must use to
  fill the span; the trades themselves come back in the subscription's snapshot (the last 50)
  and, beyond it, from REST Trades. live_data is compared with bars computed from every trade
  made; live_ticks with every trade delivered on a connection or by REST Trades (before each
  drop the drill waits until the daemon has stored what it was sent, so a trade in a socket
  buffer at the cut is not counted as delivered-and-lost).
- db_restarts: the same feed plus an EODHD 1min historical subscription while the embedded
  server is stopped (`pg_ctl stop -m fast`), kept down `--outage` seconds and started again,
  `--restarts` times. Nothing is excused: every delivered trade, every bar, every served
  historical bar must be stored.
- sigkills: `--pairs` Kraken pairs plus an EODHD 1min subscription with a lookback of two
  request chunks; the daemon is SIGKILLed `--kills` times and started again: mid-backfill
  (the fake holds the second chunk), then alternately while the span it was dead for is still
  being filled from REST (one call a second per pair, so newer live bars are already stored)
  and at a random moment while streaming. Live bars, live ticks and historical bars must end
  exactly as served: ticks a killed process had received but not yet committed come back in
  the next start's snapshot or from REST Trades.
- host_kills: Kraken pairs plus an EODHD 1min subscription of two request chunks, with the
  daemon left running and its provider hosts SIGKILLed instead: the EODHD host while it waits
  for the held second chunk, then the Kraken host `--host-kills` times at random moments while
  trading goes on. The daemon starts each host again; every delivered trade, every bar and
  every served historical bar must be stored. (The SIGKILL drill checks the other way round
  too: no host outlives its killed daemon.)
- http_429: EODHD subscriptions (1min, 5min, 1h, 1d; several request chunks) while the fake
  answers bursts of requests with 429 and a Retry-After. A chunk whose retries run out is
  recorded as a gap and collected by a later run; the drill asks for those runs the way the
  console's "backfill now" does (NOTIFY), until every subscription's last run is ok.

Served bars of the historical fake are read from its request log: every bar in a 200 answer.

Time: live bars are 1min bars, so the daemon's market clock runs `--speed` times real time,
the way tests/test_daemon.py does it (bench.daemon has the launcher); the fakes read the same
clock. See bench.drill_feeds for the quiet edges of each minute that keep the engine's grace
periods meaningful at that speed.

Output: a table (served, stored, missing, extra, wrong, dups, gaps; the target is served ==
stored and every other column 0), a line of information per drill, then one JSON object.

Run `python -m bench.drills` (all five take about 9 minutes on 2 cores; the feed drops about
a third of that, as reconnect backoff grows on a connection cut every few seconds);
`--only`, `--drops`, `--restarts`, `--kills`, `--host-kills`, `--storms` and the other flags
scale it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import report, scratch_database
from bench.daemon import Daemon, DrillError, MarketClock, Site, until
from bench.drill_feeds import (
    KrakenTrader,
    eodhd_served,
    eodhd_timeline,
    stored_history,
    usd_pairs,
)
from bench.tally import Tally, print_table, tally

# isort: split
from fakes.eodhd import TOKEN, FakeEodhd
from fakes.http_server import FakeHttpServer

from quasar_tui.core.intervals import Interval
from quasar_tui.registry.subscriptions import (
    BACKFILL_PREFIX,
    CHANGES_CHANNEL,
    SubscriptionRecord,
    SubscriptionStore,
)
from quasar_tui.store.database import Database
from quasar_tui.store.server import embedded_server

M1, M5 = Interval.M1, Interval.M5
Drill = Callable[[Database, argparse.Namespace], Awaitable[tuple[list[Tally], dict[str, Any]]]]

CLIENT_RETRIES = 5  # the SDK HttpClient's default: a request is tried six times at most

_NOTIFY = "SELECT pg_notify($1, $2)"
_RUNS_DONE = """
    SELECT count(*) FROM collection_runs
     WHERE subscription_id = $1 AND status = 'ok' AND finished_at > $2"""
_RUNS_STARTED = """
    SELECT count(*) FROM collection_runs WHERE subscription_id = $1 AND started_at > $2"""
_LAST_RUNS = """
    SELECT DISTINCT ON (s.id) s.id, r.id AS run, r.status, r.finished_at
      FROM subscriptions s LEFT JOIN collection_runs r ON r.subscription_id = s.id
     WHERE s.mode = 'historical'
     ORDER BY s.id, r.id DESC"""
_OPEN_GAPS = "SELECT count(*) FROM gaps WHERE resolved_at IS NULL"
_ENGINE_STATS = "SELECT stats FROM engine_status"
_LIVE_SERIES = "SELECT count(DISTINCT (symbol, interval)) FROM live_data WHERE provider = $1"


# -- shared steps ------------------------------------------------------------------------


async def use_eodhd(site: Site, eodhd: FakeEodhd) -> None:
    await site.registry.set_preferences("EODHD", {"base_url": eodhd.base_url, "exchanges": "US,CC"})
    await site.registry.set_secrets("EODHD", {"api_token": TOKEN})
    await site.refresh_assets("EODHD")


async def held_backfill(site: Site, eodhd: FakeEodhd, days: int) -> SubscriptionRecord:
    """EODHD 1min history of `days` days in two chunks (EODHD serves 120 days of 1min bars a
    request); the second is held two minutes, so a kill can fall in the middle of the
    backfill."""
    await use_eodhd(site, eodhd)
    eodhd.server.stall_next(1, 0.0, path="/api/intraday")
    eodhd.server.stall_next(1, 120.0, path="/api/intraday")
    [hist] = await SubscriptionStore(site.db).add(
        "EODHD", ["BTC-USD.CC"], "1min", "historical", lookback_days=days
    )
    return hist


async def backfill_now(site: Site, sub_id: int) -> None:
    """What the console's "backfill now" sends an engine in another process."""
    await site.fetch(_NOTIFY, CHANGES_CHANNEL, f"{BACKFILL_PREFIX}{sub_id}")


async def ran_ok_since(site: Site, sub_id: int, since: datetime) -> bool:
    return bool(await site.fetchval(_RUNS_DONE, sub_id, since))


async def run_after(site: Site, daemon: Daemon, sub_id: int, since: datetime) -> None:
    """Ask for a run until one started after `since` has finished ok. A NOTIFY sent while the
    engine is re-listening after an outage is not heard, so it is sent again while no run
    has started."""
    asked = 0.0

    async def done() -> bool:
        nonlocal asked
        if await ran_ok_since(site, sub_id, since):
            return True
        started = await site.fetchval(_RUNS_STARTED, sub_id, since)
        if not started and time.monotonic() - asked > 5:
            asked = time.monotonic()
            await backfill_now(site, sub_id)
        return False

    await until(done, "a historical run", 180, daemon)


async def writer_counters(site: Site) -> dict[str, dict[str, int]]:
    """Retries and refused rows per table, as the running daemon publishes them."""
    stats = await site.fetchval(_ENGINE_STATS) or {}
    return {
        table: {k: w.get(k, 0) for k in ("retries", "rejected_rows")}
        for table, w in stats.get("writers", {}).items()
    }


async def closing_facts(site: Site, settled: bool, status: int) -> dict[str, Any]:
    """What every live drill reports last: gaps left open, whether it all settled, the exit."""
    return {
        "open_gap_records": await site.fetchval(_OPEN_GAPS),
        "settled": settled,
        "exit_status": status,
    }


def live_tallies(feed: KrakenTrader, bars: dict, ticks: list) -> list[Tally]:
    return [
        tally("live bars", feed.expected_bars(), bars.items()),
        tally("live ticks", feed.delivered(), ticks),
    ]


async def history_tally(site: Site, eodhd: FakeEodhd) -> Tally:
    served = eodhd_served(eodhd)
    return tally(
        "historical bars",
        served,
        await stored_history(site, "EODHD"),
        eodhd_timeline(eodhd, served),
    )


class PgCtl:
    """pg_ctl on the drills' embedded server, run as the server's account."""

    def __init__(self, server: Database) -> None:
        assert server.server.data_dir is not None, "drills run on an embedded server"
        self.server = embedded_server(server.server.data_dir)

    async def restart(self, outage: float) -> None:
        """Stop fast (sessions are cut), stay down, start again. The daemon's own supervisor
        may restart the server first; then the start here only joins it."""
        await asyncio.to_thread(self.server.pg_ctl, ["stop", "-m", "fast", "-w"])
        await asyncio.sleep(outage)
        await asyncio.to_thread(self.server.start)

    async def stop(self) -> None:
        """Stop the server for good: this process is its last user."""
        await asyncio.to_thread(self.server.release)


# -- the drills --------------------------------------------------------------------------


async def feed_drops(server: Database, a: argparse.Namespace) -> tuple[list[Tally], dict]:
    site = await Site.open(server, "drill_feed_drops")
    clock = MarketClock.starting_now(a.speed)
    feed = KrakenTrader(clock, {"BTC/USD": {M1, M5}, "ETH/USD": {M1}}, seed=a.seed)
    try:
        await feed.start(site)
        daemon = await feed.trade_with(site)
        lagged = 0
        for _ in range(a.drops):
            await asyncio.sleep(a.up)
            lagged += not await feed.catch_up(site, daemon)
            connects = feed.ws.connects
            await feed.ws.drop()
            feed.begin()
            await feed.wait_subscribed(daemon, connects)
        settled = await feed.finish(site, daemon, M5)
        status = await daemon.stop()
        tallies = live_tallies(feed, await feed.stored_bars(site), await feed.stored_ticks(site))
        delivered = len(feed.delivered())
        return tallies, {
            "drops": a.drops,
            "connections": feed.ws.connects,
            "trades_made": feed.made(),
            "trades_delivered": delivered,
            "trades_fetched_from_rest": feed.fetched(),
            "trades_only_in_rest_history": feed.made() - delivered,
            "delivered_out_of_order": feed.delivered_out_of_order(),
            "rest_gap_fills": feed.rest_fills(),
            "catch_up_timeouts": lagged,
            **await closing_facts(site, settled, status),
        }
    finally:
        await feed.stop()
        await site.close(a.logs)


async def db_restarts(server: Database, a: argparse.Namespace) -> tuple[list[Tally], dict]:
    site = await Site.open(server, "drill_db_restarts")
    clock = MarketClock.starting_now(a.speed)
    feed = KrakenTrader(clock, {"BTC/USD": {M1}, "ETH/USD": {M1}}, seed=a.seed + 1)
    try:
        async with FakeEodhd(symbols=("BTC-USD.CC",)) as eodhd:
            await use_eodhd(site, eodhd)
            [hist] = await SubscriptionStore(site.db).add(
                "EODHD", ["BTC-USD.CC"], "1min", "historical", lookback_days=2
            )
            await feed.start(site)
            began = datetime.now(UTC)
            daemon = await feed.trade_with(site)
            await until(
                lambda: ran_ok_since(site, hist.id, began), "the first historical run", 120, daemon
            )
            for _ in range(a.restarts):
                await asyncio.sleep(a.up)
                await PgCtl(server).restart(a.outage)
            await run_after(site, daemon, hist.id, datetime.now(UTC))
            settled = await feed.finish(site, daemon, M1)
            counters = await writer_counters(site)
            status = await daemon.stop()
            tallies = [
                *live_tallies(feed, await feed.stored_bars(site), await feed.stored_ticks(site)),
                await history_tally(site, eodhd),
            ]
            return tallies, {
                "restarts": a.restarts,
                "outage_s": a.outage,
                "writer_retries": {t: c["retries"] for t, c in counters.items()},
                "rows_refused": sum(c["rejected_rows"] for c in counters.values()),
                "connections": feed.ws.connects,
                **await closing_facts(site, settled, status),
            }
    finally:
        await feed.stop()
        await site.close(a.logs)


async def sigkills(server: Database, a: argparse.Namespace) -> tuple[list[Tally], dict]:
    site = await Site.open(server, "drill_sigkills")
    clock = MarketClock.starting_now(a.speed)
    pairs = usd_pairs(a.pairs)
    symbols = [f"{ws}" for _, ws, _, _ in pairs.values()]
    feed = KrakenTrader(clock, {s: {M1} for s in symbols}, seed=a.seed + 2, pairs=pairs)
    rng = random.Random(a.seed)
    try:
        async with FakeEodhd(symbols=("BTC-USD.CC",)) as eodhd:
            hist = await held_backfill(site, eodhd, a.lookback)
            await feed.start(site)
            daemon = await feed.trade_with(site)

            async def ready_to_kill() -> bool:
                chunk = any(
                    r.status == 200 and r.path.startswith("/api/intraday")
                    for r in eodhd.server.requests
                )
                return chunk and await site.fetchval(_LIVE_SERIES, "KRAKEN") == len(symbols)

            await until(ready_to_kill, "a chunk served and a live bar of each series", 180, daemon)
            kinds = ["mid-backfill"]
            orphans = await daemon.kill()
            for n in range(1, a.kills + 1):
                await asyncio.sleep(a.down)  # trades made now reach no live connection
                connects = feed.ws.connects
                began = datetime.now(UTC)
                daemon = site.start_daemon(clock)
                await feed.wait_subscribed(daemon, connects)
                first_live = M1.next_start(M1.floor(clock()))
                if n == a.kills:
                    break
                if n % 2:
                    # Bars newer than the restart are written while the span the daemon was
                    # dead for is still being filled from REST (one call a second per series).
                    kinds.append("gap fills pending")
                    await until(
                        partial(_live_since, site, first_live),
                        "a live bar after the restart",
                        120,
                        daemon,
                    )
                else:
                    kinds.append("streaming")
                    await until(
                        partial(ran_ok_since, site, hist.id, began),
                        "the resumed historical run",
                        300,
                        daemon,
                    )
                    await asyncio.sleep(rng.uniform(1.0, clock.real(90)))
                orphans += await daemon.kill()
            await until(
                lambda: ran_ok_since(site, hist.id, began),
                "the resumed historical run",
                300,
                daemon,
            )
            settled = await feed.finish(site, daemon, M1)
            status = await daemon.stop()
            live = live_tallies(feed, await feed.stored_bars(site), await feed.stored_ticks(site))
            history = await history_tally(site, eodhd)
            unfinished = await site.fetchval(
                "SELECT count(*) FROM collection_runs WHERE finished_at IS NULL"
            )
            if orphans:
                raise DrillError(f"{orphans} provider hosts outlived their SIGKILLed daemon")
            return [*live, history], {
                "kills": kinds,
                "pairs": len(symbols),
                "daemons_started": len(site.daemons),
                "hosts_outliving_daemon": orphans,
                "trades_fetched_from_rest": feed.fetched(),
                "runs_left_unfinished": unfinished,
                **await closing_facts(site, settled, status),
            }
    finally:
        await feed.stop()
        await site.close(a.logs)


async def _live_since(site: Site, ts: datetime) -> bool:
    return bool(
        await site.fetchval(
            "SELECT count(*) FROM live_data WHERE provider = 'KRAKEN' AND ts >= $1", ts
        )
    )


async def host_kills(server: Database, a: argparse.Namespace) -> tuple[list[Tally], dict]:
    site = await Site.open(server, "drill_host_kills")
    clock = MarketClock.starting_now(a.speed)
    feed = KrakenTrader(clock, {"BTC/USD": {M1}, "ETH/USD": {M1}}, seed=a.seed + 3)
    rng = random.Random(a.seed + 3)
    try:
        async with FakeEodhd(symbols=("BTC-USD.CC",)) as eodhd:
            hist = await held_backfill(site, eodhd, a.lookback)
            await feed.start(site)
            daemon = await feed.trade_with(site)
            await until(
                lambda: eodhd.server.count("/api/intraday") >= 2, "the held chunk", 180, daemon
            )
            killed = datetime.now(UTC)
            await kill_host(site, daemon, "EODHD")
            for _ in range(a.host_kills):
                # Trading goes on: trades in the killed host's hands come back in the next
                # connection's snapshot or from REST Trades.
                await asyncio.sleep(rng.uniform(1.0, clock.real(90)))
                connects = feed.ws.connects
                await kill_host(site, daemon, "KRAKEN")
                await feed.wait_subscribed(daemon, connects)
            await run_after(site, daemon, hist.id, killed)
            settled = await feed.finish(site, daemon, M1)
            restarts = {name: (await _host(site, name))["restarts"] for name in HOSTED}
            status = await daemon.stop()
            live = live_tallies(feed, await feed.stored_bars(site), await feed.stored_ticks(site))
            return [*live, await history_tally(site, eodhd)], {
                "host_restarts": restarts,
                "connections": feed.ws.connects,
                "trades_fetched_from_rest": feed.fetched(),
                **await closing_facts(site, settled, status),
            }
    finally:
        await feed.stop()
        await site.close(a.logs)


HOSTED = ("KRAKEN", "EODHD")


async def _host(site: Site, provider: str) -> dict[str, Any]:
    """What the running daemon last published about `provider`'s host (pid, state, ...)."""
    stats = await site.fetchval(_ENGINE_STATS) or {}
    return stats.get("providers", {}).get(provider, {}).get("host", {})


async def kill_host(site: Site, daemon: Daemon, provider: str) -> None:
    """SIGKILL `provider`'s running host (a child of `daemon`), then wait for the daemon to
    have started another."""

    async def running() -> int | None:
        host = await _host(site, provider)
        return host.get("pid") if host.get("state") == "running" else None

    pid = await until(running, f"a running {provider} host", 60, daemon)
    if pid not in {p.pid for p in daemon.processes()[1:]}:
        raise DrillError(f"{provider}'s host {pid} is not a child of the daemon")
    os.kill(pid, signal.SIGKILL)
    await until(lambda: _restarted(running, pid), f"{provider}'s host started again", 120, daemon)


async def _restarted(running: Callable[[], Awaitable[int | None]], killed: int) -> bool:
    pid = await running()
    return pid is not None and pid != killed


class Storm:
    """Bursts of 429s with a Retry-After, one queued as soon as the last one was answered."""

    def __init__(self, server: FakeHttpServer, bursts: int, rng: random.Random) -> None:
        self.server = server
        self.bursts = bursts
        self.rng = rng
        self.queued: list[tuple[int, float]] = []  # (429s, Retry-After) per burst

    def answered(self) -> int:
        return sum(1 for r in self.server.requests if r.status == 429)

    def answered_at_least(self, count: int) -> bool:
        return self.answered() >= count

    async def run(self) -> None:
        for _ in range(self.bursts):
            burst = (self.rng.randint(2, 8), self.rng.choice((0.2, 0.5, 1.0, 1.5)))
            self.server.fail_next(burst[0], 429, retry_after=burst[1], path="/api/")
            self.queued.append(burst)
            target = sum(count for count, _ in self.queued)
            if not await until(
                partial(self.answered_at_least, target),
                "the burst answered",
                30,
                required=False,
            ):
                return  # no more requests come: the rest of the burst waits for them

    def early_retries(self) -> int:
        """Retries of a request answered 429 sent sooner than its Retry-After said. After
        the last attempt the client gives up (the job records a gap), so the next request
        for the same URL is a later run, not a retry."""
        waits = iter([wait for count, wait in self.queued for _ in range(count)])
        streak: dict[tuple, int] = {}
        due: dict[tuple, float] = {}  # URL -> earliest time its retry may come
        early = 0
        for seen in self.server.requests:
            url = (seen.path, tuple(sorted(seen.query.items())))
            if url in due and seen.at < due.pop(url) - 0.05:
                early += 1
            if seen.status != 429:
                streak.pop(url, None)
                continue
            streak[url] = streak.get(url, 0) + 1
            wait = next(waits)
            if streak[url] <= CLIENT_RETRIES:
                due[url] = seen.at + wait
        return early


async def http_429(server: Database, a: argparse.Namespace) -> tuple[list[Tally], dict]:
    site = await Site.open(server, "drill_http_429")
    try:
        async with FakeEodhd() as eodhd:
            await use_eodhd(site, eodhd)
            store = SubscriptionStore(site.db)
            for symbol, interval, days in (
                ("AAPL.US", "1min", 250),
                ("MSFT.US", "5min", 1300),
                ("BTC-USD.CC", "1h", 2000),
                ("AAPL.US", "1d", 3650),
            ):
                await store.add("EODHD", [symbol], interval, "historical", lookback_days=days)
            storm = Storm(eodhd.server, a.storms, random.Random(a.seed))
            storming = asyncio.create_task(storm.run())
            daemon = site.start_daemon(MarketClock(time.time()))
            asked: dict[int, tuple[int, float]] = {}  # sub -> (run it followed, when)

            async def all_ok() -> bool:
                """Ask again for every subscription whose last run failed a chunk."""
                last = await site.fetch(_LAST_RUNS)
                for row in last:
                    done = row["run"] is not None and row["finished_at"] is not None
                    run, when = asked.get(row["id"], (None, 0.0))
                    if (
                        done
                        and row["status"] != "ok"
                        and (run != row["run"] or time.monotonic() - when > 10)
                    ):
                        asked[row["id"]] = (row["run"], time.monotonic())
                        await backfill_now(site, row["id"])
                return (
                    storming.done()
                    and not await site.fetchval(_OPEN_GAPS)
                    and all(r["status"] == "ok" and r["finished_at"] is not None for r in last)
                )

            await until(all_ok, "every subscription's last run ok", a.timeout_429, daemon)
            status = await daemon.stop()
            runs = await site.fetch("SELECT status, count(*) FROM collection_runs GROUP BY 1")
            failed = await site.fetchval("SELECT count(*) FROM gaps WHERE reason = 'fetch_failed'")
            return [await history_tally(site, eodhd)], {
                "bursts": len(storm.queued),
                "answered_429": storm.answered(),
                "requests": len(eodhd.server.requests),
                "retries_before_retry_after": storm.early_retries(),
                "runs": {r["status"]: r["count"] for r in runs},
                "chunks_failed_then_refetched": failed,
                "reruns_asked": len(asked),
                "exit_status": status,
            }
    finally:
        await site.close(a.logs)


DRILLS: dict[str, tuple[str, Drill]] = {
    "feed_drops": ("feed dropped", feed_drops),
    "db_restarts": ("database restarted", db_restarts),
    "sigkills": ("daemon SIGKILLed", sigkills),
    "host_kills": ("provider hosts SIGKILLed", host_kills),
    "http_429": ("429 storms", http_429),
}


def _times(a: argparse.Namespace, name: str) -> str:
    count = {
        "feed_drops": a.drops,
        "db_restarts": a.restarts,
        "sigkills": a.kills,
        "host_kills": a.host_kills + 1,
        "http_429": a.storms,
    }[name]
    return f"{DRILLS[name][0]} x{count}"


async def main(a: argparse.Namespace) -> None:
    started = time.monotonic()
    outcomes: dict[str, dict[str, Any]] = {}
    table: list[tuple[str, list[Tally]]] = []
    async with scratch_database(min_size=0) as server:
        try:
            for name in a.only:
                began = time.monotonic()
                try:
                    tallies, info = await DRILLS[name][1](server, a)
                    error = None
                except DrillError as exc:
                    tallies, info, error = [], {}, str(exc)
                outcomes[name] = {
                    "title": _times(a, name),
                    "clean": error is None and all(t.clean for t in tallies),
                    "rows": {t.what: t.figures() for t in tallies},
                    "info": info,
                    "error": error,
                    "seconds": round(time.monotonic() - began, 1),
                }
                table.append((_times(a, name), tallies))
        finally:
            await server.close()
            await PgCtl(server).stop()
    print_table(table)
    for outcome in outcomes.values():
        facts = ", ".join(f"{k} {v}" for k, v in outcome["info"].items())
        print(f"{outcome['title']} ({outcome['seconds']:g} s): {facts}")
        if outcome["error"]:
            print(f"{outcome['title']}: DRILL FAILED: {outcome['error']}")
    report(
        {
            "bench": "drills",
            "speed": a.speed,
            "all_clean": all(o["clean"] for o in outcomes.values()),
            "seconds": round(time.monotonic() - started, 1),
            "drills": outcomes,
            "target": "served == stored; missing, extra, wrong, dups, gaps all 0",
        }
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(DRILLS),
        default=list(DRILLS),
        help="drills to run (default: all, in this order)",
    )
    parser.add_argument(
        "--speed", type=float, default=8.0, help="market seconds per real second in the live drills"
    )
    parser.add_argument("--drops", type=int, default=10, help="feed drops")
    parser.add_argument(
        "--up",
        type=float,
        default=4.0,
        help="real seconds of streaming before each drop or restart",
    )
    parser.add_argument("--restarts", type=int, default=3, help="database restarts")
    parser.add_argument(
        "--outage", type=float, default=3.0, help="real seconds the database stays down each time"
    )
    parser.add_argument("--kills", type=int, default=3, help="daemon SIGKILLs")
    parser.add_argument(
        "--pairs",
        type=int,
        default=10,
        help="Kraken pairs in the SIGKILL drill (gap fills take a second each)",
    )
    parser.add_argument(
        "--down", type=float, default=2.0, help="real seconds a killed daemon stays dead"
    )
    parser.add_argument(
        "--lookback",
        type=int,
        default=122,
        help="days of 1min history in the SIGKILL drill (over 120: two chunks)",
    )
    parser.add_argument(
        "--host-kills",
        type=int,
        default=3,
        help="SIGKILLs of the Kraken provider host (5 in 10 minutes park a provider)",
    )
    parser.add_argument("--storms", type=int, default=12, help="bursts of 429s")
    parser.add_argument(
        "--timeout-429", type=float, default=240.0, help="real seconds the 429 drill may take"
    )
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--logs", type=Path, help="keep the daemons' logs in this folder")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
