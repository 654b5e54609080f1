"""Subscriptions: validated against the provider, all-or-nothing, last bar shown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from helpers import HANG_SECONDS, until
from registry_rows import add_provider

from quasar_tui.core.errors import ConflictError, InvalidInputError, NotFoundError
from quasar_tui.engine.engine import Engine
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.store.database import Database


@pytest.fixture
async def subs(db: Database) -> SubscriptionStore:
    await add_provider(db, "EODHD", intervals=["1d", "1w"], assets=["AAPL.US", "MSFT.US"])
    await add_provider(
        db,
        "KRAKEN",
        "live",
        intervals=["1min", "1h"],
        has_history=True,
        assets=["XBT/USD", "ETH/USD", "XDG/USD"],
    )
    await add_provider(db, "SIM", "live", intervals=["1min"], has_history=False, assets=["SIM1"])
    return SubscriptionStore(db)


async def test_add_validates_and_writes_all_symbols(subs: SubscriptionStore) -> None:
    added = await subs.add(
        "KRAKEN", ["XBT/USD", "ETH/USD", "XBT/USD"], "60min", "live", lookback_days=30
    )
    assert [(s.symbol, s.interval, s.mode, s.lookback_days, s.enabled, s.state) for s in added] == [
        ("XBT/USD", "1h", "live", 30, True, "new"),
        ("ETH/USD", "1h", "live", 30, True, "new"),
    ]
    assert (await subs.add("KRAKEN", ["XBT/USD"], "1h", "historical"))[0].mode == "historical"
    assert (await subs.add("EODHD", ["AAPL.US"], "d", "historical"))[0].interval == "1d"
    assert len(await subs.list()) == 4
    assert [s.symbol for s in await subs.list("KRAKEN")] == ["ETH/USD", "XBT/USD", "XBT/USD"]
    found = await subs.find("KRAKEN", "XBT/USD", "1h", "live")
    assert found is not None and found.id == added[0].id
    assert await subs.find("KRAKEN", "XBT/USD", "1min", "live") is None


@pytest.mark.parametrize(
    ("provider", "symbols", "interval", "mode", "error", "message"),
    [
        ("NOPE", ["X"], "1d", "historical", NotFoundError, "no provider named 'NOPE'"),
        (
            "KRAKEN",
            ["XBT/USD", "BTCUSD"],
            "1h",
            "live",
            NotFoundError,
            "KRAKEN has no asset 'BTCUSD'; did you mean XBT/USD?",
        ),
        ("KRAKEN", ["XBT/USD"], "2h", "live", InvalidInputError, "unknown interval '2h'"),
        (
            "KRAKEN",
            ["XBT/USD"],
            "1d",
            "live",
            InvalidInputError,
            "KRAKEN does not offer 1d bars; it offers: 1min 1h",
        ),
        (
            "EODHD",
            ["AAPL.US"],
            "1d",
            "live",
            InvalidInputError,
            "EODHD is a historical provider; subscribe without --live",
        ),
        (
            "SIM",
            ["SIM1"],
            "1min",
            "historical",
            InvalidInputError,
            "SIM is a live provider with no history; subscribe with --live",
        ),
        ("KRAKEN", [" "], "1h", "live", InvalidInputError, "name at least one symbol"),
    ],
)
async def test_bad_subscriptions_are_refused_and_nothing_is_written(
    subs: SubscriptionStore,
    provider: str,
    symbols: list[str],
    interval: str,
    mode: str,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error) as err:
        await subs.add(provider, symbols, interval, mode)
    assert message in str(err.value)
    assert await subs.list() == []


async def test_lookback_must_be_positive(subs: SubscriptionStore) -> None:
    with pytest.raises(InvalidInputError, match="lookback must be a whole number of days"):
        await subs.add("EODHD", ["AAPL.US"], "1d", "historical", lookback_days=0)


async def test_duplicates_are_a_conflict_that_writes_nothing(subs: SubscriptionStore) -> None:
    first = await subs.add("KRAKEN", ["XBT/USD"], "1h", "live")
    with pytest.raises(ConflictError) as err:
        await subs.add("KRAKEN", ["ETH/USD", "XBT/USD"], "1h", "live")
    assert str(err.value) == (
        f"already subscribed to 1h live bars of KRAKEN: XBT/USD (id {first[0].id})"
    )
    assert [s.symbol for s in await subs.list()] == ["XBT/USD"]


async def test_delisted_assets_cannot_be_subscribed(subs: SubscriptionStore, db: Database) -> None:
    await db.execute("UPDATE assets SET active = false WHERE symbol = 'XDG/USD'")
    with pytest.raises(InvalidInputError, match="KRAKEN no longer lists XDG/USD"):
        await subs.add("KRAKEN", ["XDG/USD"], "1h", "live")


async def test_list_shows_the_last_stored_bar_per_mode(
    subs: SubscriptionStore, db: Database
) -> None:
    hist = (await subs.add("KRAKEN", ["XBT/USD"], "1h", "historical"))[0]
    live = (await subs.add("KRAKEN", ["XBT/USD"], "1h", "live"))[0]
    assert hist.last_bar_ts is None
    for table, hour in [("historical_data", 3), ("historical_data", 5), ("live_data", 7)]:
        await db.execute(
            f"INSERT INTO {table} (provider, symbol, interval, ts, open, high, low, close) "
            "VALUES ('KRAKEN', 'XBT/USD', '1h', $1, 1, 1, 1, 1)",
            datetime(2024, 1, 1, hour, tzinfo=UTC),
        )
    by_id = {s.id: s for s in await subs.list()}
    assert by_id[hist.id].last_bar_ts == datetime(2024, 1, 1, 5, tzinfo=UTC)
    assert by_id[live.id].last_bar_ts == datetime(2024, 1, 1, 7, tzinfo=UTC)
    assert (await subs.get(live.id)).last_bar_ts == datetime(2024, 1, 1, 7, tzinfo=UTC)


async def test_pause_resume_and_delete_keep_the_bars(subs: SubscriptionStore, db: Database) -> None:
    ids = [s.id for s in await subs.add("KRAKEN", ["XBT/USD", "ETH/USD"], "1min", "live")]
    await db.execute(
        "INSERT INTO live_data (provider, symbol, interval, ts, open, high, low, close) "
        "VALUES ('KRAKEN', 'XBT/USD', '1min', now(), 1, 1, 1, 1)"
    )
    assert await subs.set_enabled(ids, False) == 2
    assert await subs.set_enabled(ids, False) == 0
    assert [s.enabled for s in await subs.list()] == [False, False]
    with pytest.raises(NotFoundError, match="no subscription with id 999999"):
        await subs.set_enabled([ids[0], 999999], True)
    assert [s.enabled for s in await subs.list()] == [False, False]
    assert await subs.delete(ids) == 2
    assert await subs.list() == []
    assert await db.fetchval("SELECT count(*) FROM live_data") == 1
    with pytest.raises(NotFoundError, match=f"no subscription with id {ids[0]}"):
        await subs.get(ids[0])


async def test_user_edits_notify_the_engine_but_state_updates_do_not(
    subs: SubscriptionStore, db: Database
) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
    listener: asyncpg.Connection = await db.connect()
    await listener.add_listener("quasar_changes", lambda *args: heard.put_nowait(args[3]))
    try:
        sub = (await subs.add("KRAKEN", ["XBT/USD"], "1h", "live"))[0]
        assert await asyncio.wait_for(heard.get(), HANG_SECONDS) == "subscriptions"
        ran = datetime(2024, 5, 1, tzinfo=UTC)
        await subs.set_state(sub.id, "error", "HTTP 500", ran_at=ran)
        await subs.set_enabled([sub.id], False)
        assert await asyncio.wait_for(heard.get(), HANG_SECONDS) == "subscriptions"
        assert heard.empty()
    finally:
        await listener.close()
    stored = await subs.get(sub.id)
    assert (stored.state, stored.last_error, stored.last_run_at) == ("error", "HTTP 500", ran)
    with pytest.raises(NotFoundError):
        await subs.set_state(999999, "ok")


RUNS = "SELECT count(*) FROM collection_runs WHERE subscription_id = $1 AND finished_at IS NOT NULL"


async def runs_reach(db: Database, sub_id: int, times: int) -> None:
    """Wait until the subscription's job has finished `times` runs (a hang guard fails it)."""

    async def reached() -> bool:
        return await db.fetchval(RUNS, sub_id) >= times

    await until(reached, f"{times} finished runs")


async def test_backfill_requests_reach_an_engine_started_elsewhere(
    db: Database, tmp_path: Path
) -> None:
    registry = ProviderRegistry(db, Keyring.load_or_create(tmp_path))
    await registry.add(Path(__file__).parent / "provider_files" / "good_historical.py")
    provider = await registry.load("synthetic")
    try:
        await AssetStore(db).refresh("synthetic", provider)
    finally:
        await provider.aclose()
    subs = SubscriptionStore(db)
    daily, paused = await subs.add("synthetic", ["AAA", "BBB"], "1d", "historical", lookback_days=5)
    await subs.set_enabled([paused.id], False)
    engine = Engine.create(db, data_dir=tmp_path, mode="daemon")
    await engine.start()
    try:
        await runs_reach(db, daily.id, 1)
        asked = await subs.request_backfill([daily.id, paused.id])
        assert [s.id for s in asked] == [daily.id]
        await runs_reach(db, daily.id, 2)  # the next bar close is hours away
        assert await db.fetchval(RUNS, paused.id) == 0
        with pytest.raises(NotFoundError, match="no subscription with id 999999"):
            await subs.request_backfill([999999])
    finally:
        await engine.stop()
