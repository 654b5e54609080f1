"""Provider symbols mapped to common symbols, with the uniqueness rules of the design.

One common symbol per provider symbol, and one symbol per provider per common symbol; the
table constraints enforce both, this module turns a violation into advice.
A common symbol left with no mapping is removed with its last mapping.
"""

from __future__ import annotations

import builtins
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from quasar_tui.core.errors import ConflictError, InvalidInputError, NotFoundError
from quasar_tui.core.symbols import validate_common
from quasar_tui.registry.assets import AssetRecord, AssetStore, provider_row, unknown_symbol_error
from quasar_tui.store.database import Database

_SELECT = """
SELECT m.common_symbol, m.provider, m.symbol, a.name, a.active, m.created_at
FROM asset_mappings m
JOIN assets a ON a.provider = m.provider AND a.symbol = m.symbol
"""
LIST = (
    _SELECT
    + """
WHERE ($1::text IS NULL OR m.common_symbol = $1) AND ($2::text IS NULL OR m.provider = $2)
ORDER BY m.common_symbol, m.provider, m.symbol
"""
)
GET = _SELECT + "WHERE m.provider = $1 AND m.symbol = $2"

ASSET_EXISTS = "SELECT EXISTS (SELECT 1 FROM assets WHERE provider = $1 AND symbol = $2)"
COMMON_EXISTS = "SELECT EXISTS (SELECT 1 FROM common_symbols WHERE symbol = $1)"

# What stands in the way of mapping (provider, symbol) to a common symbol.
BLOCKERS = """
SELECT provider, symbol, common_symbol FROM asset_mappings
WHERE provider = ANY($1::text[]) AND (symbol = ANY($2::text[]) OR common_symbol = ANY($3::text[]))
"""

ENSURE_COMMONS = """
INSERT INTO common_symbols (symbol) SELECT DISTINCT unnest($1::text[])
ON CONFLICT DO NOTHING RETURNING symbol
"""

# Rows that break a rule (or whose asset vanished) are skipped, in input order.
INSERT_MANY = """
INSERT INTO asset_mappings (provider, symbol, common_symbol)
SELECT t.provider, t.symbol, t.common_symbol
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
     AS t(common_symbol, provider, symbol, n)
JOIN assets a ON a.provider = t.provider AND a.symbol = t.symbol
ORDER BY t.n
ON CONFLICT DO NOTHING
RETURNING provider, symbol
"""

DROP_ORPHANS = """
DELETE FROM common_symbols c
WHERE c.symbol = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM asset_mappings m WHERE m.common_symbol = c.symbol)
"""

RENAME = "UPDATE common_symbols SET symbol = $2 WHERE symbol = $1"
MAPPINGS_OF = "SELECT count(*) FROM asset_mappings WHERE common_symbol = $1"
DELETE = "DELETE FROM asset_mappings WHERE provider = $1 AND symbol = $2 RETURNING common_symbol"

MAPPED_PROVIDERS = "SELECT provider FROM asset_mappings WHERE common_symbol = $1"
CLEAR_SYMBOL_PRIORITY = "DELETE FROM symbol_priority WHERE common_symbol = $1"
SET_SYMBOL_PRIORITY = """
INSERT INTO symbol_priority (common_symbol, provider, rank)
SELECT $1, p, n FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n)
"""
CLEAR_GLOBAL_PRIORITY = "DELETE FROM provider_priority"
SET_GLOBAL_PRIORITY = """
INSERT INTO provider_priority (provider, rank)
SELECT p, n FROM unnest($1::text[]) WITH ORDINALITY AS t(p, n)
"""
PROVIDER_NAMES = "SELECT name FROM providers WHERE name = ANY($1::text[])"

# Payloads of the registry's change notifications (db/046) saying that what a common symbol
# stands for may have changed.
CHANGED_TABLES = frozenset({"asset_mappings", "symbol_priority", "provider_priority"})


@dataclass(frozen=True)
class MappingRecord:
    common_symbol: str
    provider: str
    symbol: str
    name: str | None
    active: bool
    created_at: datetime


Triple = tuple[str, str, str]
"""(common symbol, provider, provider symbol)"""


def common_symbol(text: str) -> str:
    """Validated and upper-cased, or InvalidInputError."""
    try:
        return validate_common(text)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None


def _delete_hint(provider: str, symbol: str) -> str:
    return f"delete it first with `quasar map delete {provider} {shlex.quote(symbol)}`"


def conflict_reason(
    provider: str, symbol: str, common: str, blockers: Iterable[asyncpg.Record]
) -> str | None:
    """Why mapping provider:symbol to `common` breaks a rule, or None when nothing does."""
    for row in blockers:
        if row["provider"] != provider:
            continue
        if row["symbol"] == symbol and row["common_symbol"] != common:
            return (
                f"{provider}:{symbol} is already mapped to {row['common_symbol']}; "
                + _delete_hint(provider, symbol)
            )
        if row["common_symbol"] == common and row["symbol"] != symbol:
            return (
                f"{common} already has {provider}:{row['symbol']} (one symbol per provider "
                "per common symbol); " + _delete_hint(provider, row["symbol"])
            )
    return None


class MappingStore:
    """Map, list, rename and delete; `map_many` is the bulk path suggestions use."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def map(self, common: str, provider: str, symbol: str) -> MappingRecord:
        """Map provider:symbol to `common`, creating the common symbol when it is new.

        Mapping a symbol to the common symbol it already has is not an error.
        """
        common = common_symbol(common)
        async with self.db.pool.acquire() as conn, conn.transaction():
            await provider_row(conn, provider)
            if not await conn.fetchval(ASSET_EXISTS, provider, symbol):
                raise await unknown_symbol_error(conn, provider, symbol)
            blockers = await conn.fetch(BLOCKERS, [provider], [symbol], [common])
            reason = conflict_reason(provider, symbol, common, blockers)
            if reason:
                raise ConflictError(reason)
            await conn.fetch(ENSURE_COMMONS, [common])
            await conn.fetch(INSERT_MANY, [common], [provider], [symbol])
            row = await conn.fetchrow(GET, provider, symbol)
            if row is None or row["common_symbol"] != common:
                raise ConflictError(
                    f"the mappings of {provider} changed meanwhile; run the command again"
                )
        return MappingRecord(**dict(row))

    async def map_many(
        self, triples: Sequence[Triple], on_skip: Callable[[Triple, str], None] | None = None
    ) -> int:
        """Create many mappings in one transaction; those that now break a rule are skipped.

        Returns how many were created; `on_skip` hears each skipped one and why.
        """
        valid: list[Triple] = []
        for common, provider, symbol in triples:
            try:
                valid.append((common_symbol(common), provider, symbol))
            except InvalidInputError as exc:
                if on_skip:
                    on_skip((common, provider, symbol), str(exc))
        if not valid:
            return 0
        commons, providers, syms = (list(col) for col in zip(*valid, strict=True))
        async with self.db.pool.acquire() as conn, conn.transaction():
            new = [r["symbol"] for r in await conn.fetch(ENSURE_COMMONS, commons)]
            created = {
                (r["provider"], r["symbol"])
                for r in await conn.fetch(INSERT_MANY, commons, providers, syms)
            }
            await conn.execute(DROP_ORPHANS, new)
            skipped = [t for t in valid if (t[1], t[2]) not in created]
            blockers = await conn.fetch(BLOCKERS, providers, syms, commons) if skipped else []
        if on_skip:
            for common, provider, symbol in skipped:
                reason = conflict_reason(provider, symbol, common, blockers)
                if reason is None:
                    mapped = any(
                        b["provider"] == provider and b["symbol"] == symbol for b in blockers
                    )
                    reason = (
                        f"{provider}:{symbol} is already mapped to {common}"
                        if mapped
                        else f"{provider} has no asset {symbol!r} any more"
                    )
                on_skip((common, provider, symbol), reason)
        return len(created)

    async def list(
        self, common: str | None = None, provider: str | None = None
    ) -> list[MappingRecord]:
        if provider is not None:
            await provider_row(self.db, provider)
        wanted = common_symbol(common) if common is not None else None
        rows = await self.db.fetch(LIST, wanted, provider)
        return [MappingRecord(**dict(r)) for r in rows]

    async def rename(self, old_common: str, new_common: str) -> int:
        """Rename a common symbol; its mappings follow. Returns how many mappings moved."""
        old, new = common_symbol(old_common), common_symbol(new_common)
        async with self.db.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(COMMON_EXISTS, old):
                raise NotFoundError(f"no common symbol {old}; see `quasar map list`")
            if old != new:
                if await conn.fetchval(COMMON_EXISTS, new):
                    raise ConflictError(
                        f"common symbol {new} already exists; pick another name, or delete "
                        f"the mappings of one of them with `quasar map delete`"
                    )
                await conn.execute(RENAME, old, new)
            return int(await conn.fetchval(MAPPINGS_OF, new))

    async def delete(self, provider: str, symbol: str) -> str:
        """Remove the mapping of provider:symbol; returns the common symbol it had."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            common = await conn.fetchval(DELETE, provider, symbol)
            if common is None:
                await provider_row(conn, provider)
                raise NotFoundError(f"{provider}:{symbol} is not mapped; see `quasar map list`")
            await conn.execute(DROP_ORPHANS, [common])
        return common

    async def set_priority(self, common: str | None, providers: Sequence[str]) -> None:
        """The order in which providers serve `common` (None: the default for every common
        symbol). Providers left out come after the named ones; an empty list clears it."""
        if len(set(providers)) != len(providers):
            raise InvalidInputError("a provider is named twice in the priority order")
        async with self.db.pool.acquire() as conn, conn.transaction():
            if common is None:
                known = {r["name"] for r in await conn.fetch(PROVIDER_NAMES, list(providers))}
                unknown = [p for p in providers if p not in known]
                if unknown:
                    raise NotFoundError(
                        f"no provider named {unknown[0]!r} (names are case-sensitive; "
                        "see `quasar provider list`)"
                    )
                await conn.execute(CLEAR_GLOBAL_PRIORITY)
                await conn.execute(SET_GLOBAL_PRIORITY, list(providers))
                return
            common = common_symbol(common)
            mapped = {r["provider"] for r in await conn.fetch(MAPPED_PROVIDERS, common)}
            if not mapped:
                raise NotFoundError(f"no common symbol {common}; see `quasar map list`")
            stray = [p for p in providers if p not in mapped]
            if stray:
                raise InvalidInputError(
                    f"{stray[0]} has no symbol mapped to {common}; mapped: "
                    f"{' '.join(sorted(mapped))}"
                )
            await conn.execute(CLEAR_SYMBOL_PRIORITY, common)
            await conn.execute(SET_SYMBOL_PRIORITY, common, list(providers))

    async def unmapped(self, provider: str, limit: int = 200) -> builtins.list[AssetRecord]:
        """Active assets of `provider` that no common symbol covers yet."""
        return await AssetStore(self.db).list(provider, unmapped_only=True, limit=limit)
