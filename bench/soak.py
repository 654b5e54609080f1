"""Soak: the daemon on the simulated feed at 2k ticks/s for minutes; does its memory stay flat?

`quasar --daemon --dsn ...` runs as a subprocess (bench.daemon) in real time on a database of
its own on an embedded PostgreSQL, with live 1min subscriptions to every symbol of the
SIMULATED provider, set (preferences `symbol_count`, `ticks_per_second`) to make `--rate`
trades a second in all. RSS is read after `--warmup` seconds (imports, caches, pools and the
first bars are in place by then) and every `--every` seconds until the run has lasted
`--minutes`; the figure is the growth from the first reading to the last. It counts the daemon
and its provider hosts (the SIMULATED provider runs in one): a leak in a host is a leak too,
and a host restarted meanwhile (which would hide one) is counted. Ticks stored per second over
the same window show the load was real.

Run `python -m bench.soak` (10 minutes; `--minutes` to change it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import dataclass

import psutil

from bench.common import report, scratch_database
from bench.daemon import Daemon, MarketClock, Site
from quasar_tui.registry.subscriptions import SubscriptionStore

MIB = 2**20
_TICKS = "SELECT count(*) FROM live_ticks WHERE provider = 'SIMULATED'"
_BARS = "SELECT count(*) FROM live_data WHERE provider = 'SIMULATED'"


async def main(a: argparse.Namespace) -> None:
    async with scratch_database(min_size=0) as server:
        site = await Site.open(server, "soak")
        try:
            await site.registry.set_preferences(
                "SIMULATED",
                {
                    "symbol_count": str(a.symbols),
                    "ticks_per_second": str(a.rate / a.symbols),
                },
            )
            await site.refresh_assets("SIMULATED")
            symbols = [f"SIM{n:04d}" for n in range(1, a.symbols + 1)]
            await SubscriptionStore(site.db).add("SIMULATED", symbols, "1min", "live")
            figures = await soak(site, a)
        finally:
            await site.close()
    report(
        {
            "bench": "soak",
            "minutes": a.minutes,
            "symbols": a.symbols,
            "ticks_per_second_asked": a.rate,
            **figures,
            "target_rss_growth_pct": 10,
        }
    )


@dataclass(frozen=True)
class Reading:
    """RSS of the daemon's own process (the engine) and of each of its provider hosts."""

    engine: int
    hosts: dict[int, int]  # pid -> bytes

    @property
    def total(self) -> int:
        return self.engine + sum(self.hosts.values())

    def line(self) -> str:
        hosts = sum(self.hosts.values())
        return (
            f"rss {self.total / MIB:7.1f} MiB (engine {self.engine / MIB:6.1f}, "
            f"{len(self.hosts)} hosts {hosts / MIB:6.1f})"
        )


def read_rss(daemon: Daemon) -> Reading:
    engine, *hosts = daemon.processes()
    rss = {}
    for proc in hosts:
        with contextlib.suppress(psutil.NoSuchProcess):  # a host that just exited
            rss[proc.pid] = proc.memory_info().rss
    return Reading(engine.memory_info().rss, rss)


def cpu_seconds(daemon: Daemon) -> float:
    """User and system CPU of the daemon and its hosts, those that exited included."""
    engine, *hosts = daemon.processes()
    times = engine.cpu_times()
    used = times.user + times.system + times.children_user + times.children_system
    for proc in hosts:
        with contextlib.suppress(psutil.NoSuchProcess):
            used += sum(proc.cpu_times()[:2])
    return used


def growth_pct(start: int, end: int) -> float:
    return round((end - start) / start * 100, 2) if start else 0.0


async def soak(site: Site, a: argparse.Namespace) -> dict:
    began = time.monotonic()
    daemon = site.start_daemon(MarketClock(time.time()))
    await asyncio.sleep(a.warmup)
    readings = [read_rss(daemon)]
    start_ticks = await site.fetchval(_TICKS)
    start_cpu, marked = cpu_seconds(daemon), time.monotonic()
    print(f"{a.warmup:6.0f} s  {readings[0].line()}  ticks stored {start_ticks}", flush=True)
    end = began + a.minutes * 60
    while (now := time.monotonic()) < end:
        await asyncio.sleep(min(a.every, end - now))
        if not daemon.alive():
            raise SystemExit(f"the daemon exited ({daemon.proc.returncode}):\n{daemon.tail()}")
        readings.append(read_rss(daemon))
        print(
            f"{time.monotonic() - began:6.0f} s  {readings[-1].line()}  "
            f"ticks stored {await site.fetchval(_TICKS)}",
            flush=True,
        )
    first, last, end_ticks = readings[0], readings[-1], await site.fetchval(_TICKS)
    window = time.monotonic() - marked
    cpu = cpu_seconds(daemon) - start_cpu
    status = await daemon.stop()
    totals = [r.total for r in readings]
    host_pids = {pid for r in readings for pid in r.hosts}
    return {
        "rss_start_mib": round(first.total / MIB, 1),
        "rss_end_mib": round(last.total / MIB, 1),
        "rss_peak_mib": round(max(totals) / MIB, 1),
        "rss_growth_pct": growth_pct(first.total, last.total),
        "engine_rss_growth_pct": growth_pct(first.engine, last.engine),
        "hosts_rss_growth_pct": growth_pct(sum(first.hosts.values()), sum(last.hosts.values())),
        "hosts": len(first.hosts),
        "host_restarts": len(host_pids) - len(first.hosts),
        "rss_samples_mib": [round(t / MIB, 1) for t in totals],
        "ticks_stored_per_second": round((end_ticks - start_ticks) / window),
        "ticks_stored": end_ticks,
        "bars_stored": await site.fetchval(_BARS),
        "daemon_cpu_share": round(cpu / window, 3),
        "exit_status": status,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run")
    parser.add_argument("--rate", type=float, default=2000.0, help="ticks a second in all")
    parser.add_argument("--symbols", type=int, default=100, help="simulated symbols")
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds before the first RSS reading"
    )
    parser.add_argument("--every", type=float, default=30.0, help="seconds between RSS readings")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
