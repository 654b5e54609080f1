"""The cost of running a live provider in its sandbox: ticks per second through the host's pipe
versus the same feed loop in this process.

The provider (FLOOD, below) streams from memory as fast as it is read: each message holds
`--batch` trades as JSON, so both runs parse the same text into the same `Tick`s with the same
connection loop (quasar_tui.sandbox.feed.LiveFeed). In process, the loop hands its batches to a
counter; through the host, they are encoded, framed, written to the socketpair, read, decoded
and counted here, as the engine will receive them. Each run lasts `--duration` seconds after a
one second warm-up. Printed: ticks/s both ways, their ratio, CPU cores and CPU microseconds per
tick of this process and of the host (on a busy machine the per-tick CPU is the steadier
figure), the machine and the date.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from datetime import UTC, datetime

import psutil

from bench.common import report
from quasar_tui.core.intervals import Interval
from quasar_tui.sandbox import loader
from quasar_tui.sandbox.client import HostSpec, ProviderHost
from quasar_tui.sandbox.feed import LiveFeed
from quasar_tui.sandbox.protocol import Live, Msg, State
from quasar_tui.sdk.base import LiveDataProvider
from quasar_tui.sdk.context import ProviderContext

FLOOD = """
import json
import time
from datetime import UTC, datetime

from quasar_tui.sdk import LiveDataProvider, Setting, Tick


class _Feed:
    def __init__(self, batch):
        now = time.time()
        self.message = json.dumps(
            [[f"F{i % 10}", now + i * 1e-6, 100.0 + i % 7, 0.5, i] for i in range(batch)]
        )

    def __aiter__(self):
        return self

    async def __anext__(self):
        return self.message

    async def send(self, frame):
        pass

    async def close(self):
        pass


class Flood(LiveDataProvider):
    name = "FLOOD"
    CONFIGURABLE = {"batch": Setting(type="int", default=100, help="trades per message")}

    async def fetch_available_symbols(self):
        return []

    async def _connect(self):
        return _Feed(self.pref("batch"))

    async def _subscribe(self, interval, symbols):
        return None

    async def _unsubscribe(self, symbols):
        return None

    async def _parse_message(self, message):
        return [
            Tick(symbol=s, ts=datetime.fromtimestamp(ts, UTC), price=p, size=q, trade_id=k)
            for s, ts, p, q, k in json.loads(message)
        ]
"""
SUBS: dict[str, list[Interval]] = {f"F{i}": [Interval.M1] for i in range(10)}


class _Count:
    def __init__(self) -> None:
        self.ticks = 0

    def add(self, message: Msg) -> None:
        if isinstance(message, Live):
            self.ticks += len(message.ticks)


async def _measure(count: _Count, duration: float, procs: list[psutil.Process]) -> dict:
    await asyncio.sleep(1.0)  # warm-up
    cpu0 = [p.cpu_times() for p in procs]
    ticks0, t0 = count.ticks, time.monotonic()
    await asyncio.sleep(duration)
    ticks, elapsed = count.ticks - ticks0, time.monotonic() - t0
    cores = [
        round((sum(p.cpu_times()[:2]) - sum(c[:2])) / elapsed, 2)
        for p, c in zip(procs, cpu0, strict=True)
    ]
    per_tick = [round(c * elapsed / max(1, ticks) * 1e6, 2) for c in cores]
    return {"ticks_per_s": round(ticks / elapsed), "cpu_cores": cores, "cpu_us_per_tick": per_tick}


async def in_process(duration: float, batch: int) -> dict:
    code = loader.compile_source(FLOOD, "flood.py")
    module = loader.run_module(code, FLOOD, "quasar_bench_flood")
    cls = loader.inspect_module(module).cls
    provider = cls(ProviderContext(preferences={"batch": batch}))
    assert isinstance(provider, LiveDataProvider)
    count = _Count()
    feed: LiveFeed

    async def send(message: Msg) -> None:
        count.add(message)
        if isinstance(message, State) and message.state == "connected":
            feed.observing()  # what the engine says once it marked where it observes from

    feed = LiveFeed(provider, send)
    await feed.set_subscriptions(SUBS)
    try:
        return await _measure(count, duration, [psutil.Process()])
    finally:
        await feed.stop()


async def through_host(duration: float, batch: int) -> dict:
    spec = HostSpec(name="FLOOD", source=FLOOD, filename="flood.py", preferences={"batch": batch})
    host = ProviderHost(spec)
    ready = await host.start()
    count = _Count()

    async def consume() -> None:
        async for message in host.live():
            count.add(message)
            if isinstance(message, State) and message.state == "connected":
                await host.observing()

    consumer = asyncio.create_task(consume())
    try:
        await host.set_subscriptions(SUBS)
        assert host.pid is not None
        figures = await _measure(count, duration, [psutil.Process(), psutil.Process(host.pid)])
        figures["isolation"] = ready.isolation
        return figures
    finally:
        consumer.cancel()
        await host.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--batch", type=int, default=100, help="trades per feed message")
    args = parser.parse_args()
    direct = await in_process(args.duration, args.batch)
    hosted = await through_host(args.duration, args.batch)
    print(
        f"in process:   {direct['ticks_per_s']:>10,} ticks/s  "
        f"CPU us/tick {direct['cpu_us_per_tick']} (this process)"
    )
    print(
        f"through host: {hosted['ticks_per_s']:>10,} ticks/s  "
        f"CPU us/tick {hosted['cpu_us_per_tick']} (this process, host)"
    )
    report(
        {
            "bench": "sandbox",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpu": platform.processor() or platform.machine(),
            "batch": args.batch,
            "in_process": direct,
            "through_host": hosted,
            "ratio": round(hosted["ticks_per_s"] / max(1, direct["ticks_per_s"]), 2),
        }
    )


if __name__ == "__main__":
    asyncio.run(main())
