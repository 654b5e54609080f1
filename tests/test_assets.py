"""Assets: refreshed in one bulk upsert, delisted ones kept inactive, searchable."""

from __future__ import annotations

import pytest
from registry_rows import StaticSymbols, add_provider

from quasar_tui.core.errors import NotFoundError, QuasarError
from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database


class Failing:
    async def fetch_available_symbols(self) -> list[SymbolInfo]:
        raise ConnectionError("exchange unreachable")


async def test_refresh_adds_updates_and_deactivates_without_deleting(db: Database) -> None:
    store = AssetStore(db)
    await add_provider(db, "KRAKEN", "live")
    first = await store.refresh(
        "KRAKEN", StaticSymbols([SymbolInfo("XBT/USD", name="Bitcoin"), "ETH/USD", "XDG/USD"])
    )
    assert (first.added, first.updated, first.deactivated, first.total) == (3, 0, 0, 3)
    await MappingStore(db).map("DOGE/USD", "KRAKEN", "XDG/USD")
    await SubscriptionStore(db).add("KRAKEN", ["XDG/USD"], "1h", "live")

    second = await store.refresh(
        "KRAKEN",
        StaticSymbols([SymbolInfo("XBT/USD", name="Bitcoin / US Dollar"), "ETH/USD", "SOL/USD"]),
    )
    assert (second.added, second.updated, second.deactivated, second.total) == (1, 1, 1, 3)
    gone = await store.get("KRAKEN", "XDG/USD")
    assert gone.active is False and gone.common_symbol == "DOGE/USD"
    assert len(await SubscriptionStore(db).list("KRAKEN")) == 1
    assert (await store.get("KRAKEN", "XBT/USD")).name == "Bitcoin / US Dollar"
    assert await store.count("KRAKEN") == 3

    back = await store.refresh("KRAKEN", StaticSymbols(["XBT/USD", "XDG/USD"]))
    assert back.added == 0 and back.deactivated == 2
    assert (await store.get("KRAKEN", "XDG/USD")).active is True


async def test_refresh_of_a_large_listing_is_one_statement(db: Database) -> None:
    await add_provider(db, "EODHD")
    listing = [
        SymbolInfo(f"T{i:05d}.US", name=f"Company {i}", asset_class="Common Stock")
        for i in range(20_000)
    ]
    report = await AssetStore(db).refresh("EODHD", StaticSymbols(listing))
    assert report.added == 20_000
    again = await AssetStore(db).refresh("EODHD", StaticSymbols(listing))
    assert (again.added, again.updated, again.deactivated) == (0, 0, 0)


async def test_a_failing_provider_leaves_stored_assets_untouched(db: Database) -> None:
    store = AssetStore(db)
    await add_provider(db, "KRAKEN", assets=["XBT/USD", "ETH/USD"])
    with pytest.raises(QuasarError, match=r"KRAKEN.*exchange unreachable.*unchanged"):
        await store.refresh("KRAKEN", Failing())
    with pytest.raises(QuasarError, match="KRAKEN listed no symbols"):
        await store.refresh("KRAKEN", StaticSymbols([]))
    with pytest.raises(QuasarError, match="returned an item of type int; expected SymbolInfo"):
        await store.refresh("KRAKEN", StaticSymbols([SymbolInfo("A/USD"), 3]))
    with pytest.raises(QuasarError, match="an entry with no symbol"):
        await store.refresh("KRAKEN", StaticSymbols([{"symbol": " ", "name": "blank"}]))
    rows = await store.list("KRAKEN")
    assert [(a.symbol, a.active) for a in rows] == [("ETH/USD", True), ("XBT/USD", True)]


async def test_search_ranks_exact_then_prefix_then_similar(db: Database) -> None:
    await add_provider(
        db,
        "POLY",
        assets=[
            SymbolInfo("AAPL", name="Apple Inc."),
            SymbolInfo("AAPLW", name="Apple warrants"),
            SymbolInfo("APLE", name="Apple Hospitality REIT"),
            SymbolInfo("MSFT", name="Microsoft Corp"),
            SymbolInfo("SNAP", name="Snap Inc"),
            SymbolInfo("A_B", name="Underscore Co"),
        ],
    )
    store = AssetStore(db)
    found = [a.symbol for a in await store.list("POLY", "aapl")]
    assert found[:2] == ["AAPL", "AAPLW"]
    assert [a.symbol for a in await store.list("POLY", "apple")][:3] == ["AAPL", "AAPLW", "APLE"]
    assert [a.symbol for a in await store.list("POLY", "microsoft")] == ["MSFT"]
    assert [a.symbol for a in await store.list("POLY", "a_")] == ["A_B"]
    assert len(await store.list("POLY", limit=2, offset=5)) == 1


async def test_search_without_pg_trgm_still_ranks(db: Database) -> None:
    await db.execute("DROP EXTENSION pg_trgm CASCADE")
    await add_provider(
        db,
        "POLY",
        assets=[
            SymbolInfo("AAPLW", name="Apple warrants"),
            SymbolInfo("AAPL", name="Apple Inc."),
            SymbolInfo("MAAPL", name="Not Apple"),
            SymbolInfo("MSFT", name="Microsoft Corp"),
        ],
    )
    found = [a.symbol for a in await AssetStore(db).list("POLY", "AAPL")]
    assert found == ["AAPL", "AAPLW", "MAAPL"]


async def test_unmapped_only_hides_mapped_and_delisted(db: Database) -> None:
    await add_provider(db, "KRAKEN", assets=["XBT/USD", "ETH/USD", "SOL/USD"])
    await MappingStore(db).map("BTC/USD", "KRAKEN", "XBT/USD")
    await AssetStore(db).refresh("KRAKEN", StaticSymbols(["XBT/USD", "ETH/USD"]))
    rows = await AssetStore(db).list("KRAKEN", unmapped_only=True)
    assert [a.symbol for a in rows] == ["ETH/USD"]


async def test_unknown_provider_and_symbol_say_what_to_do(db: Database) -> None:
    store = AssetStore(db)
    with pytest.raises(NotFoundError, match="no provider named 'NOPE'; see `quasar provider"):
        await store.list("NOPE")
    with pytest.raises(NotFoundError, match="no provider named 'NOPE'"):
        await store.refresh("NOPE", StaticSymbols(["X"]))
    await add_provider(db, "KRAKEN", assets=["XBT/USD"])
    with pytest.raises(NotFoundError, match="KRAKEN has no asset 'BTCUSD'; did you mean XBT/USD"):
        await store.get("KRAKEN", "BTCUSD")
