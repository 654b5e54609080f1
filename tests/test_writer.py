"""The writer against a real PostgreSQL: both write paths, backpressure, and outages."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from helpers import until

from quasar_tui.engine.events import BarsWritten, EngineError, EventBus, WriterStats
from quasar_tui.engine.writer import Writer
from quasar_tui.store.announce import CHANNEL, Written, decode
from quasar_tui.store.database import Database
from quasar_tui.store.server import ServerInfo

T0 = datetime(2024, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def bars(symbol: str, start: int, count: int, *, bump: float = 0.0) -> list[tuple]:
    rows = []
    for i in range(start, start + count):
        price = 100.0 + i * 0.01 + bump
        rows.append(
            (
                "P",
                symbol,
                "1min",
                T0 + i * MINUTE,
                price,
                price + 1,
                price - 1,
                price + 0.5,
                float(i),
            )
        )
    return rows


async def stored(db: Database, symbol: str | None = None) -> list[tuple]:
    records = await db.fetch(
        """SELECT provider, symbol, interval, ts, open, high, low, close, volume
             FROM historical_data WHERE $1::text IS NULL OR symbol = $1
            ORDER BY symbol, ts""",
        symbol,
    )
    return [tuple(r) for r in records]


@contextlib.asynccontextmanager
async def running(db: Database, bus: EventBus | None = None, **kwargs):
    writer = Writer(db, bus or EventBus(), **kwargs)
    await writer.start()
    try:
        yield writer
    finally:
        await writer.stop(grace=30)


async def test_fast_path_stores_exactly_the_rows_given(db: Database) -> None:
    bus = EventBus()
    written = bus.subscribe(kinds=(BarsWritten,))
    rows = bars("AAA", 0, 3000) + bars("BBB", 0, 2500)
    async with running(db, bus, flush_rows=1000, max_batch_rows=1000) as writer:
        await writer.put_bars("historical_data", rows)
        await writer.flush()
        stats = writer.stats()["historical_data"]
    assert await stored(db) == sorted(rows, key=lambda r: (r[1], r[3]))
    assert stats["fast_batches"] >= 5 and stats["overlap_batches"] == 0
    counts: dict[str, int] = {}
    for event in written.drain():
        counts[event.symbol] = counts.get(event.symbol, 0) + event.count
    assert counts == {"AAA": 3000, "BBB": 2500}


async def test_rows_piled_up_behind_a_commit_go_in_as_one_larger_batch(db: Database) -> None:
    rows = bars("AAA", 0, 4000)
    async with running(db, flush_rows=500, max_batch_rows=10_000) as writer:
        await writer.put_bars("historical_data", rows)
        await writer.flush()
        stats = writer.stats()["historical_data"]
    assert await stored(db) == rows
    assert stats["fast_batches"] == 1


async def test_overlap_path_replaces_corrected_bars_without_duplicates(db: Database) -> None:
    async with running(db) as writer:
        await writer.put_bars("historical_data", bars("AAA", 0, 1000))
        await writer.flush()
        corrected = bars("AAA", 500, 1000, bump=7.0)  # half overlaps, half is new
        await writer.put_bars("historical_data", corrected)
        await writer.flush()
        again = bars("AAA", 0, 1500, bump=0.0)[:500] + corrected  # exact re-write
        await writer.put_bars("historical_data", again)
        await writer.flush()
        stats = writer.stats()["historical_data"]
    assert await stored(db) == bars("AAA", 0, 500) + corrected
    assert stats["overlap_batches"] == 2


async def test_duplicates_inside_one_batch_keep_the_last(db: Database) -> None:
    async with running(db) as writer:
        await writer.put_bars("historical_data", bars("AAA", 0, 10) + bars("AAA", 5, 5, bump=1))
        await writer.flush()
    assert await stored(db) == bars("AAA", 0, 5) + bars("AAA", 5, 5, bump=1)


async def test_live_bars_and_ticks(db: Database) -> None:
    live = [(*row, 3) for row in bars("AAA", 0, 20)]
    ticks = [("P", "AAA", T0 + i * MINUTE, i, 1.0 + i, 0.5, "buy") for i in range(50)]
    async with running(db) as writer:
        await writer.put_bars("live_data", live)
        await writer.put_ticks(ticks)
        await writer.flush()
        # a re-delivered tick (reconnect snapshot) with other values is not a new trade
        await writer.put_ticks([("P", "AAA", T0, 0, 999.0, 9.0, "sell"), *ticks[:10]])
        await writer.flush()
        stats = writer.stats()["live_ticks"]
        with pytest.raises(ValueError, match="historical_data or live_data"):
            await writer.put_bars("live_ticks", live)
    got_live = await db.fetch("SELECT * FROM live_data ORDER BY ts")
    assert [tuple(r) for r in got_live] == live
    got_ticks = await db.fetch(
        "SELECT provider, symbol, ts, seq, price, size, side FROM live_ticks ORDER BY ts, seq"
    )
    assert [tuple(r) for r in got_ticks] == ticks
    # Tick batches skip the look at what is stored: the re-sent ones fail the COPY into the merge.
    assert (stats["fast_batches"], stats["fallbacks"], stats["overlap_batches"]) == (1, 1, 1)


async def test_tick_batches_report_how_many_rows_of_each_series_and_its_newest(
    db: Database,
) -> None:
    """What the writer reports for ticks comes from its COPY encoder (store/tick_copy.py):
    out-of-order trades, equal times told apart by trade id, series interleaved."""
    bus = EventBus()
    written = bus.subscribe(kinds=(BarsWritten,))
    second = timedelta(seconds=1)
    ticks = [
        ("P", "AAA", T0 + 5 * second, 7, 1.0, 1.0, "buy"),
        ("P", "BBB", T0 + 9 * second, 1, 1.0, 1.0, "buy"),
        ("P", "AAA", T0 + 2 * second, 3, 1.0, 1.0, "buy"),  # older: not the newest
        ("Q", "AAA", T0, 1, 1.0, 1.0, None),  # another provider's series
        ("P", "AAA", T0 + 5 * second, 9, 1.0, 1.0, "sell"),  # same time, later trade
        ("P", "BBB", T0 + 3 * second, 2, 1.0, 1.0, "buy"),
    ]
    async with running(db, bus) as writer:
        await writer.put_ticks(ticks)
        await writer.flush()
    reports = {
        (e.provider, e.symbol): (e.count, e.last_ts)
        for e in written.drain()
        if e.table == "live_ticks"
    }
    assert reports == {
        ("P", "AAA"): (3, T0 + 5 * second),
        ("P", "BBB"): (2, T0 + 9 * second),
        ("Q", "AAA"): (1, T0),
    }
    assert await db.fetchval("SELECT count(*) FROM live_ticks") == len(ticks)


async def test_ticks_read_back_as_asyncpg_would_have_stored_them(db: Database) -> None:
    """The writer encodes tick rows itself (store/tick_copy.py): whatever the values, what is
    stored is what asyncpg's own COPY stores."""
    india = timezone(timedelta(hours=5, minutes=30))
    ticks = [
        ("P", "AAA", T0 + timedelta(microseconds=1), 1, 100.25, 0.5, "buy"),
        ("P", "AAA", datetime(2024, 3, 1, 5, 30, 0, 999_999, tzinfo=india), 2, 1e300, 0, "sell"),
        ("P", "AAA", datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC), 3, -1.5, 2.0, None),
        ("P", "NAIVE", datetime(2024, 3, 1, 12, 0, 0, 7), 4, float("inf"), 1e-9, "achat"),
        ("Fournisseur", "ÉTH/€ 😀", T0, 2**63 - 1, 3, 4, ""),
        ("P", "BBB", T0, -(2**63), 5.0, 6.0, "sell"),
    ]
    async with running(db) as writer:
        await writer.put_ticks(ticks)
        await writer.flush()
    conn = await db.connect()
    try:
        await conn.execute("CREATE TEMP TABLE asyncpg_ticks (LIKE live_ticks)")
        await conn.copy_records_to_table("asyncpg_ticks", records=ticks)
        expected = await conn.fetch("SELECT * FROM asyncpg_ticks ORDER BY symbol, ts, seq")
    finally:
        await conn.close()
    got = await db.fetch(
        "SELECT provider, symbol, ts, seq, price, size, side FROM live_ticks"
        " ORDER BY symbol, ts, seq"
    )
    assert [tuple(r) for r in got] == [tuple(r) for r in expected]
    assert len(got) == len(ticks)


async def test_ticks_that_cannot_be_stored_are_isolated_and_reported(db: Database) -> None:
    bus = EventBus()
    errors = bus.subscribe(kinds=(EngineError,))
    good = [("P", "AAA", T0 + i * MINUTE, i, 1.0 + i, 0.5, "buy") for i in range(30)]
    bad = [
        ("P", "AAA", T0 - MINUTE, 2**63, 1.0, 1.0, None),  # beyond int8
        ("P", "A\x00B", T0, 1, 1.0, 1.0, None),  # PostgreSQL text holds no NUL
        ("P", "AAA", "yesterday", 1, 1.0, 1.0, None),  # not a time
    ]
    async with running(db, bus) as writer:
        await writer.put_ticks([*good[:10], bad[0], *good[10:20], bad[1], bad[2], *good[20:]])
        await writer.flush()
        stats = writer.stats()["live_ticks"]
    got = await db.fetch(
        "SELECT provider, symbol, ts, seq, price, size, side FROM live_ticks ORDER BY ts"
    )
    assert [tuple(r) for r in got] == good
    assert stats["rejected_rows"] == 3
    messages = [e.message for e in errors.drain()]
    assert messages and all("rows refused and not written" in m for m in messages)


async def test_a_lone_tick_is_stored_at_once_while_a_lone_bar_waits_for_company(
    db: Database,
) -> None:
    """Ticks linger at most 0.05 s for more rows (a peer storing each trade as it comes is no
    faster); historical bars up to the writer's flush_seconds (here 30 s)."""
    tick = ("P", "AAA", T0, 1, 100.0, 0.5, "buy")
    bar = bars("AAA", 0, 1)
    async with running(db, flush_seconds=30) as writer:
        await writer.put_bars("historical_data", bar)
        await writer.put_ticks([tick])
        await until(
            lambda: db.fetchval("SELECT count(*) FROM live_ticks"),
            "the tick stored",
            hang_seconds=5,
        )
        assert await stored(db) == []
        await writer.flush()
        assert await stored(db) == bar


async def test_concurrent_conflicting_copy_falls_back_to_merge(db: Database) -> None:
    async with running(db) as writer:
        await writer.put_bars("historical_data", bars("AAA", 0, 100))
        await writer.flush()
        # Someone else (another process) writes beyond what this writer believes is stored.
        other = await db.connect()
        try:
            await other.copy_records_to_table(
                "historical_data",
                records=bars("AAA", 100, 50, bump=3.0),
                columns=[
                    "provider",
                    "symbol",
                    "interval",
                    "ts",
                    "open",
                    "high",
                    "low",
                    "close",
                    "volume",
                ],
            )
        finally:
            await other.close()
        await writer.put_bars("historical_data", bars("AAA", 100, 100))
        await writer.flush()
        stats = writer.stats()["historical_data"]
    assert stats["fallbacks"] == 1
    assert await stored(db) == bars("AAA", 0, 200)


async def test_refused_rows_are_isolated_and_reported(db: Database) -> None:
    bus = EventBus()
    errors = bus.subscribe(kinds=(EngineError,))
    rows = bars("AAA", 0, 40)
    bad = ("P", "AAA", "1min", T0 - MINUTE, None, 1.0, 1.0, 1.0, 1.0)  # open is NOT NULL
    async with running(db, bus) as writer:
        await writer.put_bars("historical_data", [*rows[:20], bad, *rows[20:]])
        await writer.flush()
        stats = writer.stats()["historical_data"]
    assert await stored(db) == rows
    assert stats["rejected_rows"] == 1
    [error] = errors.drain()
    assert error.message.startswith("1 rows refused and not written: NotNullViolationError")


async def test_full_queue_makes_producers_wait(db: Database) -> None:
    async with running(db, queue_rows=100, flush_rows=50, flush_seconds=0.01) as writer:
        blocker = await db.connect()
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE historical_data IN ACCESS EXCLUSIVE MODE")
        producer = asyncio.create_task(writer.put_bars("historical_data", bars("AAA", 0, 400)))
        try:
            await until(lambda: writer.stats()["historical_data"]["queue_depth"] == 100)
            await asyncio.sleep(0.2)
            assert not producer.done()
            assert writer.stats()["historical_data"]["queue_depth"] == 100
        finally:
            await tx.rollback()
            await blocker.close()
        await producer
        await writer.flush()
    assert await stored(db) == bars("AAA", 0, 400)


class TcpProxy:
    """A loopback TCP relay to PostgreSQL that can cut every connection and refuse new ones."""

    def __init__(self, dsn: str) -> None:
        self.dsn = urlsplit(dsn)
        socket_dir = parse_qs(self.dsn.query).get("host")  # the embedded server's Unix socket
        self.socket = str(next(Path(socket_dir[0]).glob(".s.PGSQL.*[0-9]"))) if socket_dir else None
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Drop every connection and refuse new ones, like a database that went away."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for link in list(self._links):
            link.transport.abort()
        self._links.clear()

    def proxied(self) -> str:
        """The DSN as seen through this proxy."""
        user = self.dsn.username or "postgres"
        if self.dsn.password is not None:
            user = f"{user}:{self.dsn.password}"
        passfile = parse_qs(self.dsn.query).get("passfile")  # the embedded server's password
        query = urlencode({"passfile": passfile[0]}) if passfile else ""
        return urlunsplit(self.dsn._replace(netloc=f"{user}@127.0.0.1:{self.port}", query=query))

    async def _open_upstream(self):
        if self.socket:
            return await asyncio.open_unix_connection(self.socket)
        return await asyncio.open_connection(self.dsn.hostname, self.dsn.port or 5432)

    async def _relay(self, client_r, client_w) -> None:
        try:
            server_r, server_w = await self._open_upstream()
        except OSError:
            client_w.transport.abort()
            return
        self._links.update((client_w, server_w))

        async def pipe(reader, writer) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.transport.abort()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))


async def test_database_outage_loses_nothing(db: Database) -> None:
    proxy = TcpProxy(db.dsn)
    await proxy.start()
    via_proxy = Database(ServerInfo(proxy.proxied(), False), db.pool)
    bus = EventBus()
    events = bus.subscribe(kinds=(EngineError, WriterStats))
    expected = []
    async with running(via_proxy, bus, flush_rows=200, flush_seconds=0.02) as writer:
        for i in range(30):
            chunk = bars("AAA", i * 100, 100)
            expected += chunk
            await writer.put_bars("historical_data", chunk)
            if i == 10:
                await writer.flush()
                await proxy.cut()
            if i == 20:
                await until(lambda: writer.stats()["historical_data"]["retries"] >= 3)
                await proxy.start()
            await asyncio.sleep(0.005)
        await writer.flush()
        stats = writer.stats()["historical_data"]
    assert await stored(db) == expected
    seen = events.drain()
    assert sum(isinstance(e, EngineError) for e in seen) == 1
    assert any(isinstance(e, WriterStats) and e.pending_retry > 0 for e in seen)
    assert stats["retries"] >= 3 and stats["rejected_rows"] == 0
    await proxy.cut()


async def test_backend_terminated_between_batches_loses_nothing(db: Database) -> None:
    sep = "&" if "?" in db.dsn else "?"
    named = Database(ServerInfo(f"{db.dsn}{sep}application_name=quasar-writer", False), db.pool)
    expected = []
    async with running(named, flush_rows=100, flush_seconds=0.01) as writer:
        for i in range(10):
            chunk = bars("AAA", i * 100, 100)
            expected += chunk
            await writer.put_bars("historical_data", chunk)
            await writer.flush()
            killed = await db.fetchval(
                """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE application_name = 'quasar-writer'"""
            )
            assert killed == 1
    assert await stored(db) == expected


async def test_stopped_writer_refuses_rows(db: Database) -> None:
    writer = Writer(db, EventBus())
    with pytest.raises(RuntimeError, match="not running"):
        await writer.put_ticks([("P", "A", T0, 1, 1.0, 1.0, None)])


async def test_committed_bars_are_announced_to_other_processes(db: Database) -> None:
    """`quasar serve` in another process drops cached answers and streams bars on these."""
    heard: asyncio.Queue[Written] = asyncio.Queue()
    listener = await db.connect()
    await listener.add_listener(CHANNEL, lambda *args: heard.put_nowait(decode(args[3])))
    try:
        async with running(db) as writer:
            await writer.put_bars("historical_data", bars("AAA", 0, 10) + bars("BBB", 5, 3))
            await writer.flush()
            await writer.put_ticks([("P", "AAA", T0, 1, 1.0, 1.0, None)])
            await writer.flush()
        got = {}
        while len(got) < 2:
            note = await asyncio.wait_for(heard.get(), 30)
            got[note.symbol] = note
    finally:
        await listener.close()
    assert (got["AAA"].count, got["AAA"].first_ts, got["AAA"].last_ts) == (10, T0, T0 + 9 * MINUTE)
    assert (got["BBB"].table, got["BBB"].interval, got["BBB"].count) == (
        "historical_data",
        "1min",
        3,
    )
    assert heard.empty()  # ticks are not announced
