"""Mappings: the uniqueness rules with advice, rename, delete, scored suggestions, bulk accept."""

from __future__ import annotations

import pytest
from registry_rows import add_provider

from quasar_tui.core.errors import ConflictError, InvalidInputError, NotFoundError
from quasar_tui.registry.mappings import MappingStore
from quasar_tui.registry.suggestions import MappingSuggester, Suggestion
from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database

APPLE_FIGI = "BBG000B9XRY4"


@pytest.fixture
async def kraken(db: Database) -> MappingStore:
    await add_provider(
        db,
        "KRAKEN",
        "live",
        assets=[
            SymbolInfo("XBT/USD", name="Bitcoin / US Dollar", base="XXBT", quote="ZUSD"),
            SymbolInfo("XBTUSD.M", name="Bitcoin margin"),
            SymbolInfo("ETH/USD", name="Ethereum / US Dollar"),
        ],
    )
    return MappingStore(db)


async def test_map_creates_the_common_symbol_and_lists_it(kraken: MappingStore) -> None:
    record = await kraken.map("btcusd", "KRAKEN", "XBT/USD")
    assert (record.common_symbol, record.name) == ("BTCUSD", "Bitcoin / US Dollar")
    again = await kraken.map("BTCUSD", "KRAKEN", "XBT/USD")
    assert again == record
    await kraken.map("ETHUSD", "KRAKEN", "ETH/USD")
    assert [m.common_symbol for m in await kraken.list()] == ["BTCUSD", "ETHUSD"]
    assert [m.symbol for m in await kraken.list(common="ethusd")] == ["ETH/USD"]
    assert len(await kraken.list(provider="KRAKEN")) == 2


async def test_one_common_symbol_per_provider_symbol(kraken: MappingStore) -> None:
    await kraken.map("BTCUSD", "KRAKEN", "XBT/USD")
    with pytest.raises(ConflictError) as err:
        await kraken.map("BTC", "KRAKEN", "XBT/USD")
    assert str(err.value) == (
        "KRAKEN:XBT/USD is already mapped to BTCUSD; "
        "delete it first with `quasar map delete KRAKEN XBT/USD`"
    )
    assert [m.common_symbol for m in await kraken.list()] == ["BTCUSD"]


async def test_one_provider_symbol_per_common_symbol(kraken: MappingStore) -> None:
    await kraken.map("BTCUSD", "KRAKEN", "XBT/USD")
    with pytest.raises(ConflictError) as err:
        await kraken.map("BTCUSD", "KRAKEN", "XBTUSD.M")
    assert str(err.value).startswith("BTCUSD already has KRAKEN:XBT/USD")
    assert str(err.value).endswith("delete it first with `quasar map delete KRAKEN XBT/USD`")


async def test_bad_input_is_refused_with_what_to_do(kraken: MappingStore) -> None:
    with pytest.raises(InvalidInputError, match="contains whitespace"):
        await kraken.map("BTC USD", "KRAKEN", "XBT/USD")
    with pytest.raises(InvalidInputError, match="limit is 32"):
        await kraken.map("B" * 40, "KRAKEN", "XBT/USD")
    with pytest.raises(NotFoundError, match="no provider named 'BINANCE'"):
        await kraken.map("BTCUSD", "BINANCE", "BTCUSDT")
    with pytest.raises(NotFoundError, match="KRAKEN has no asset 'BTC/USD'; did you mean XBT/USD"):
        await kraken.map("BTCUSD", "KRAKEN", "BTC/USD")
    assert await kraken.list() == []


async def test_rename_cascades_and_refuses_an_existing_name(kraken: MappingStore) -> None:
    await kraken.map("BTCUSD", "KRAKEN", "XBT/USD")
    await kraken.map("ETHUSD", "KRAKEN", "ETH/USD")
    assert await kraken.rename("btcusd", "btc/usd") == 1
    assert {m.common_symbol for m in await kraken.list()} == {"BTC/USD", "ETHUSD"}
    with pytest.raises(ConflictError, match="common symbol ETHUSD already exists"):
        await kraken.rename("BTC/USD", "ETHUSD")
    with pytest.raises(NotFoundError, match="no common symbol BTCUSD"):
        await kraken.rename("BTCUSD", "X")


async def test_delete_removes_the_mapping_and_its_orphaned_common_symbol(
    kraken: MappingStore, db: Database
) -> None:
    await kraken.map("BTCUSD", "KRAKEN", "XBT/USD")
    assert await kraken.delete("KRAKEN", "XBT/USD") == "BTCUSD"
    assert await db.fetchval("SELECT count(*) FROM common_symbols") == 0
    with pytest.raises(NotFoundError, match="KRAKEN:XBT/USD is not mapped"):
        await kraken.delete("KRAKEN", "XBT/USD")
    assert [a.symbol for a in await kraken.unmapped("KRAKEN")] == ["ETH/USD", "XBT/USD", "XBTUSD.M"]


@pytest.fixture
async def world(db: Database) -> MappingSuggester:
    """KRAKEN and POLY mapped already; EODHD new and unmapped."""
    mappings = MappingStore(db)
    await add_provider(
        db,
        "KRAKEN",
        "live",
        assets=[
            SymbolInfo("XBT/USD", name="Bitcoin / US Dollar"),
            SymbolInfo("ETH/USD", name="Ethereum / US Dollar"),
        ],
    )
    await mappings.map("BTC/USD", "KRAKEN", "XBT/USD")
    await mappings.map("ETH/USD", "KRAKEN", "ETH/USD")
    await add_provider(
        db,
        "POLY",
        assets=[
            SymbolInfo("AAPL", name="Apple Inc.", figi=APPLE_FIGI),
            SymbolInfo("APLE", name="Apple Hospitality REIT Inc"),
            SymbolInfo("FB", name="Meta Platforms, Inc."),
        ],
    )
    for common, symbol in [("AAPL", "AAPL"), ("APLE", "APLE"), ("FB", "FB")]:
        await mappings.map(common, "POLY", symbol)
    await add_provider(
        db,
        "EODHD",
        assets=[
            SymbolInfo("BTC-USD.CC", name="Bitcoin USD"),
            SymbolInfo("BCH-USD.CC", name="Bitcoin Cash USD"),
            SymbolInfo("0R2V.LSE", name="Apple Hospitality REIT Inc", figi=APPLE_FIGI),
            SymbolInfo("META.US", name="Meta Platforms Inc"),
            SymbolInfo("ZZZ.US", name="Nothing Alike Ltd"),
        ],
    )
    return MappingSuggester(db)


def _best(suggestions: list[Suggestion]) -> dict[str, Suggestion]:
    return {s.symbol: s for s in suggestions}


async def _check_obvious_matches(world: MappingSuggester) -> None:
    best = _best(await world.suggest("EODHD"))
    assert best["BTC-USD.CC"].common_symbol == "BTC/USD"
    assert best["BTC-USD.CC"].reason.startswith("same base/quote as")
    figi = best["0R2V.LSE"]
    assert (figi.common_symbol, figi.score, figi.reason) == ("AAPL", 1.0, "same FIGI as POLY:AAPL")
    meta = best["META.US"]
    assert meta.common_symbol == "FB" and meta.reason == "name similar to Meta Platforms, Inc."
    assert (best["BCH-USD.CC"].common_symbol, best["BCH-USD.CC"].is_new) == ("BCH/USD", True)
    assert best["ZZZ.US"].reason == "new: normalised symbol"
    assert list(best) == sorted(best, key=lambda s: -best[s].score)
    alternatives = await world.alternatives("EODHD", "0R2V.LSE")
    assert [s.common_symbol for s in alternatives[:2]] == ["AAPL", "APLE"]
    assert alternatives[1].reason.startswith("name similar to Apple Hospitality")
    assert len(await world.suggest("EODHD", min_score=0.5)) == 3


async def test_suggestions_rank_the_obvious_match_first(world: MappingSuggester) -> None:
    await _check_obvious_matches(world)


async def test_suggestions_without_pg_trgm_use_difflib(
    world: MappingSuggester, db: Database
) -> None:
    await db.execute("DROP EXTENSION pg_trgm CASCADE")
    await _check_obvious_matches(world)


async def test_every_spelling_of_one_pair_suggests_the_same_common_symbol(db: Database) -> None:
    await add_provider(db, "KRAKEN", "live", assets=["XBT/USD"])
    await MappingStore(db).map("BTC/USD", "KRAKEN", "XBT/USD")
    await add_provider(db, "EODHD", assets=["BTC-USD.CC"])
    await add_provider(db, "POLY", assets=["BTCUSD"])
    suggester = MappingSuggester(db)
    for provider in ("EODHD", "POLY"):
        assert [s.common_symbol for s in await suggester.suggest(provider)] == ["BTC/USD"]


async def test_a_common_symbol_the_provider_uses_is_never_suggested(db: Database) -> None:
    await add_provider(db, "KRAKEN", "live", assets=["XBT/USD", "XBTUSD"])
    await MappingStore(db).map("BTC/USD", "KRAKEN", "XBT/USD")
    assert await MappingSuggester(db).suggest("KRAKEN") == []


async def test_accept_creates_a_hundred_mappings_in_one_call(db: Database) -> None:
    bases = [f"Q{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(100)]
    await add_provider(db, "KRAKEN", "live", assets=[f"{b}/USD" for b in bases])
    await MappingStore(db).map_many([(f"{b}/USD", "KRAKEN", f"{b}/USD") for b in bases])
    await add_provider(db, "EODHD", assets=[f"{b}-USD.CC" for b in bases])
    suggester = MappingSuggester(db)
    suggestions = await suggester.suggest("EODHD", min_score=0.9)
    assert len(suggestions) == 100
    assert await suggester.accept(suggestions) == 100
    mapped = await MappingStore(db).list(provider="EODHD")
    assert {(m.symbol, m.common_symbol) for m in mapped} == {
        (f"{b}-USD.CC", f"{b}/USD") for b in bases
    }
    assert await suggester.suggest("EODHD") == []


async def test_accept_skips_what_now_conflicts_and_says_why(db: Database) -> None:
    await add_provider(db, "KRAKEN", "live", assets=["XBT/USD"])
    await MappingStore(db).map("BTC/USD", "KRAKEN", "XBT/USD")
    await add_provider(db, "EODHD", assets=["BTC-USD.CC", "BTCUSD.CC", "ETH-USD.CC"])
    suggester = MappingSuggester(db)
    suggestions = await suggester.suggest("EODHD")
    assert [s.common_symbol for s in suggestions] == ["BTC/USD", "BTC/USD", "ETH/USD"]
    await MappingStore(db).map("ETH", "EODHD", "ETH-USD.CC")
    skipped: list[tuple[str, str]] = []
    created = await suggester.accept(suggestions, lambda s, why: skipped.append((s.symbol, why)))
    assert created == 1
    assert skipped == [
        (
            "BTCUSD.CC",
            "BTC/USD already has EODHD:BTC-USD.CC (one symbol per provider per "
            "common symbol); delete it first with `quasar map delete EODHD BTC-USD.CC`",
        ),
        (
            "ETH-USD.CC",
            "EODHD:ETH-USD.CC is already mapped to ETH; "
            "delete it first with `quasar map delete EODHD ETH-USD.CC`",
        ),
    ]
    assert await db.fetchval("SELECT count(*) FROM common_symbols WHERE symbol = 'ETH/USD'") == 0
