"""Soak: the daemon on the simulated feed at 2k ticks/s for minutes; does its memory stay flat?

`quasar --daemon --dsn ...` runs as a subprocess (bench.daemon) in real time on a database of
its own on an embedded PostgreSQL, with live 1min subscriptions to every symbol of the
SIMULATED provider, set (preferences `symbol_count`, `ticks_per_second`) to make `--rate`
trades a second in all. RSS of the daemon process is read after `--warmup` seconds (imports,
caches, pools and the first bars are in place by then) and every `--every` seconds until the
run has lasted `--minutes`; the figure is the growth from the first reading to the last.
Ticks stored per second over the same window show the load was real.

Run `python -m bench.soak` (10 minutes; `--minutes` to change it).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psutil

from bench.common import report, scratch_database
from bench.daemon import MarketClock, Site
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


async def soak(site: Site, a: argparse.Namespace) -> dict:
    began = time.monotonic()
    daemon = site.start_daemon(MarketClock(time.time()))
    process = psutil.Process(daemon.pid)
    await asyncio.sleep(a.warmup)
    start_rss, start_ticks = daemon.rss(), await site.fetchval(_TICKS)
    start_cpu, marked = sum(process.cpu_times()[:2]), time.monotonic()
    samples = [start_rss]
    print(
        f"{a.warmup:6.0f} s  rss {start_rss / MIB:7.1f} MiB  ticks stored {start_ticks}", flush=True
    )
    end = began + a.minutes * 60
    while (now := time.monotonic()) < end:
        await asyncio.sleep(min(a.every, end - now))
        if not daemon.alive():
            raise SystemExit(f"the daemon exited ({daemon.proc.returncode}):\n{daemon.tail()}")
        samples.append(daemon.rss())
        print(
            f"{time.monotonic() - began:6.0f} s  rss {samples[-1] / MIB:7.1f} MiB  "
            f"ticks stored {await site.fetchval(_TICKS)}",
            flush=True,
        )
    end_rss, end_ticks = samples[-1], await site.fetchval(_TICKS)
    window = time.monotonic() - marked
    cpu = sum(process.cpu_times()[:2]) - start_cpu
    status = await daemon.stop()
    return {
        "rss_start_mib": round(start_rss / MIB, 1),
        "rss_end_mib": round(end_rss / MIB, 1),
        "rss_peak_mib": round(max(samples) / MIB, 1),
        "rss_growth_pct": round((end_rss - start_rss) / start_rss * 100, 2),
        "rss_samples_mib": [round(s / MIB, 1) for s in samples],
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
