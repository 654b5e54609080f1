"""What an engine publishes for attached consoles and `quasar status` survives its stop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from helpers import until

from quasar_tui.core.clock import utc_now
from quasar_tui.engine.lock import EngineOwner
from quasar_tui.engine.publisher import Publisher
from quasar_tui.sdk.models import Tick
from quasar_tui.store.database import Database

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WAITING_WRITES = """
    SELECT array_agg((pid, query_start)::text) FROM pg_stat_activity
     WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO live_quotes%'"""


async def test_a_stop_landing_on_a_periodic_quote_write_still_publishes_the_quotes(
    db: Database,
) -> None:
    """A daemon stopped while it wrote quotes left `live_quotes` empty (seen on a busy machine):
    the write was cancelled after the quotes were taken off the to-do list."""
    owner = EngineOwner("host", 1, "daemon", T0, T0)
    publisher = Publisher(db, owner, dict, quote_interval=0.01)
    await publisher.start()
    blocker = await db.connect()
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE live_quotes IN ACCESS EXCLUSIVE MODE")
        publisher.note_ticks("SIM", [Tick("ACME", T0, 10.0, 2.0)])
        [periodic] = await until(
            lambda: db.fetchval(WAITING_WRITES), "the periodic write held by the lock"
        )
        stopping = asyncio.create_task(publisher.stop())
        # The periodic write is cancelled; what follows is the final flush writing the quote
        # again (held by the lock too), or, when the quote was lost, the stop completing.
        await until(
            lambda: stopping.done() or _another_write_waits(db, periodic), "the final flush"
        )
        await tx.rollback()
        await stopping
    finally:
        await blocker.close()
    row = await db.fetchrow("SELECT last, volume, ticks FROM live_quotes WHERE symbol = 'ACME'")
    assert row is not None and tuple(row) == (10.0, 2.0, 1)


async def _another_write_waits(db: Database, periodic: str) -> bool:
    return any(w != periodic for w in await db.fetchval(WAITING_WRITES) or [])


def test_a_console_in_the_engines_process_reads_only_the_quotes_that_changed() -> None:
    """The console follows its own engine's quotes from memory: each read brings the symbols
    that traded since the last one, with every trade counted, and nothing that did not move."""
    owner = EngineOwner("host", 1, "console", utc_now(), utc_now())
    publisher = Publisher(None, owner, dict)  # no database: nothing is written
    at = utc_now()
    publisher.note_ticks("SIM", [Tick("A", at, 10.0, 1.0), Tick("A", at, 11.0, 2.0)])
    publisher.note_ticks("SIM", [Tick("B", at, 5.0, 1.0)])
    first, since = publisher.quotes_changed(0)
    assert [(q.symbol, q.last, q.volume, q.open, q.ticks) for q in first] == [
        ("A", 11.0, 3.0, 10.0, 2),
        ("B", 5.0, 1.0, 5.0, 1),
    ]
    assert publisher.quotes_changed(since) == ([], since)
    publisher.note_ticks("SIM", [Tick("B", at, 6.0, 1.0)])
    changed, _ = publisher.quotes_changed(since)
    assert [(q.symbol, q.last, q.ticks) for q in changed] == [("B", 6.0, 2)]
    restarted = Publisher(None, owner, dict)
    restarted.note_ticks("SIM", [Tick("A", at, 12.0, 1.0)])
    assert [q.last for q in restarted.quotes_changed(since)[0]] == [12.0]
