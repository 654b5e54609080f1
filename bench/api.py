"""The HTTP API on loopback: uncached and cached bar queries, and stream fan-out.

The server runs in this process (uvicorn, as `quasar serve` runs it) on a scratch embedded
database holding 30 days of 1min bars of 100 series. The load comes from a child process (a
minimal keep-alive HTTP/1.1 client and websockets clients), so client and server do not share
one interpreter lock.

Figures (one JSON object, the last line):
- uncached: p50/p99 of `GET /v1/bars` returning 1,000 stored 1min bars as JSON, and of 1,000
  1h bars derived from 1min in the database, with the cache off; sequential requests.
- cached: requests/s of one repeated 1,000-bar query (about 150 kB of JSON) answered from the
  cache, and of a 10-bar one (the per-request cost alone), over `--connections` keep-alive
  connections; and the ratio of the 1,000-bar rate to the uncached one.
- stream: `--clients` WebSocket clients each following all `--series` series while ticks
  arrive on the engine's bus (as `quasar --daemon --serve` will feed it) at `--tick-rate`
  ticks/s; the delay from a tick's publication to its arrival at a client, p50/p99, and how
  many conflated ticks arrived. Ticks carry their publication time as `ts`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import report, scratch_database
from quasar_tui.engine.events import EventBus, TickEvent
from quasar_tui.registry.apikeys import ApiKeyStore
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.registry.secrets import Keyring
from quasar_tui.sdk.models import Tick
from quasar_tui.serve.app import ServeOptions, create_app
from quasar_tui.serve.bind import Bind
from quasar_tui.serve.server import start_server
from quasar_tui.store.database import Database

START = datetime(2026, 10, 1, tzinfo=UTC)
COLUMNS = ["provider", "symbol", "interval", "ts", "open", "high", "low", "close", "volume"]
BARS_PATH = "/v1/bars?series=S000/USD&interval=1min&limit=1000"
DERIVED_PATH = "/v1/bars?series=S000/USD&interval=1h&limit=1000"
SMALL_PATH = "/v1/bars?series=S000/USD&interval=1min&limit=10"


def _symbol(i: int) -> str:
    return f"S{i:03d}/USD"


async def fill(db: Database, series: int, days: int) -> None:
    await db.execute(
        "INSERT INTO providers (name, kind, class_name, source, sha256) "
        "VALUES ('BENCH', 'live', 'Bench', '', '')"
    )
    await db.execute(
        "INSERT INTO assets (provider, symbol) SELECT 'BENCH', s FROM unnest($1::text[]) s",
        [_symbol(i) for i in range(series)],
    )
    await MappingStore(db).map_many([(_symbol(i), "BENCH", _symbol(i)) for i in range(series)])
    minutes = days * 1440
    for i in range(series):
        rows = [
            (
                "BENCH",
                _symbol(i),
                "1min",
                START + timedelta(minutes=m),
                100.0,
                101.0,
                99.0,
                100.5,
                2.0,
            )
            for m in range(minutes if i == 0 else 60)
        ]
        async with db.pool.acquire() as conn:
            await conn.copy_records_to_table("historical_data", records=rows, columns=COLUMNS)
    await db.execute("ANALYZE historical_data")


# -- the client side, in a child process ----------------------------------------------------


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes) -> int:
    writer.write(head)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


def _head(path: str, key: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {key}\r\n\r\n".encode()


async def timed_requests(port: int, key: str, path: str, count: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head, times = _head(path, key), []
    for _ in range(count):
        t0 = time.perf_counter()
        assert await _request(reader, writer, head) == 200
        times.append(time.perf_counter() - t0)
    writer.close()
    return times


async def throughput(port: int, key: str, path: str, connections: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = _head(path, key)
        while time.perf_counter() < stop:
            assert await _request(reader, writer, head) == 200
            done += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return done / (time.perf_counter() - t0)


async def stream_clients(port: int, key: str, clients: int, series: int, seconds: float) -> dict:
    import websockets

    names = ",".join(_symbol(i) for i in range(series))
    delays: list[float] = []
    ticks = 0
    closed: list[str] = []

    async def one(ready: asyncio.Event) -> None:
        nonlocal ticks
        url = f"ws://127.0.0.1:{port}/v1/stream?series={names}&kinds=ticks"
        async with websockets.connect(
            url, additional_headers={"X-API-Key": key}, max_size=None
        ) as ws:
            await ws.recv()
            ready.set()
            stop = time.time() + seconds
            try:
                while time.time() < stop:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    now = time.time()
                    for tick in message["ticks"]:
                        delays.append(now - datetime.fromisoformat(tick["ts"]).timestamp())
                        ticks += 1
            except websockets.ConnectionClosed as exc:
                closed.append(str(exc))

    events = [asyncio.Event() for _ in range(clients)]
    tasks = [asyncio.create_task(one(e)) for e in events]
    await asyncio.gather(*(e.wait() for e in events))
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    delays.sort()
    return {
        "p50_ms": round(1000 * delays[len(delays) // 2], 1) if delays else None,
        "p99_ms": round(1000 * delays[int(len(delays) * 0.99)], 1) if delays else None,
        "ticks_received": ticks,
        "clients_dropped": len(closed),
    }


def client_main(args: argparse.Namespace) -> None:
    if args.client == "requests":
        uncached = {}
        for name, path in (("stored_1min", BARS_PATH), ("derived_1h", DERIVED_PATH)):
            times = sorted(asyncio.run(timed_requests(args.port, args.key, path, args.requests)))
            uncached[name] = {
                "p50_ms": round(1000 * statistics.median(times), 1),
                "p99_ms": round(1000 * times[int(len(times) * 0.99)], 1),
                "per_s": round(len(times) / sum(times)),
            }
        print(json.dumps(uncached))
    elif args.client == "cached":
        rates = {
            name: round(asyncio.run(throughput(args.port, args.key, path, args.connections, 5.0)))
            for name, path in (("per_s", BARS_PATH), ("per_s_10_bars", SMALL_PATH))
        }
        print(json.dumps(rates))
    else:
        figures = asyncio.run(
            stream_clients(args.port, args.key, args.clients, args.series, args.seconds)
        )
        print(json.dumps(figures))


# -- the server side ------------------------------------------------------------------------


async def _child(args: argparse.Namespace, port: int, key: str, mode: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.api", "--client", mode, "--port", str(port), "--key", key,
        "--requests", str(args.requests), "--connections", str(args.connections),
        "--clients", str(args.clients), "--series", str(args.series),
        "--seconds", str(args.seconds),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0
    return json.loads(out.decode().strip().splitlines()[-1])


async def _stream_run(args: argparse.Namespace, port: int, key: str, bus: EventBus) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.api", "--client", "stream", "--port", str(port),
        "--key", key, "--clients", str(args.clients), "--series", str(args.series),
        "--seconds", str(args.seconds),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 120)).strip() == b"ready"
    period = 1.0 / args.tick_rate
    published = 0
    t0 = time.perf_counter()
    while proc.returncode is None and time.perf_counter() - t0 < args.seconds + 2:
        due = int((time.perf_counter() - t0) / period)
        for n in range(published, due):
            bus.publish(
                TickEvent("BENCH", Tick(_symbol(n % args.series), datetime.now(UTC), 100.0 + n))
            )
        published = max(published, due)
        await asyncio.sleep(0.005)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    figures = json.loads(out.decode().strip().splitlines()[-1])
    return {**figures, "ticks_published": published}


async def main(args: argparse.Namespace) -> None:
    async with scratch_database(max_size=10) as db:
        await fill(db, args.series, args.days)
        keyring = Keyring(b"k" * 32)
        keys = ApiKeyStore(db, keyring)
        _, key = await keys.create("bench", ["read", "stream"], rate=1_000_000)
        figures: dict[str, Any] = {"load_1m_at_start": round(os.getloadavg()[0], 2)}
        for ttl, mode in ((0.0, "requests"), (60.0, "cached")):
            app = create_app(db, keyring, ServeOptions(cache_ttl=ttl))
            server = await start_server(app, Bind("127.0.0.1", 0))
            try:
                figures["uncached" if ttl == 0 else "cached"] = await _child(
                    args, server.port, key, mode
                )
            finally:
                await server.stop()
        figures["cached_vs_uncached"] = round(
            figures["cached"]["per_s"] / figures["uncached"]["stored_1min"]["per_s"], 1
        )
        bus = EventBus()
        app = create_app(db, keyring, ServeOptions(), events=bus)
        server = await start_server(app, Bind("127.0.0.1", 0))
        try:
            figures["stream"] = {
                "clients": args.clients,
                "series": args.series,
                "tick_rate": args.tick_rate,
                **await _stream_run(args, server.port, key, bus),
            }
        finally:
            await server.stop()
        report(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--client", choices=("requests", "cached", "stream"), help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--days", type=int, default=30, help="days of 1min bars (default 30)")
    parser.add_argument("--requests", type=int, default=200, help="uncached requests timed")
    parser.add_argument("--connections", type=int, default=8, help="for cached requests/s")
    parser.add_argument("--clients", type=int, default=50, help="stream clients")
    parser.add_argument("--series", type=int, default=100, help="series each client follows")
    parser.add_argument("--tick-rate", type=int, default=5000, help="ticks/s on the bus")
    parser.add_argument("--seconds", type=float, default=10.0, help="stream run length")
    parsed = parser.parse_args()
    if parsed.client:
        client_main(parsed)
    else:
        asyncio.run(main(parsed))
