"""The instruments each provider offers, refreshed from `fetch_available_symbols`.

Assets are never deleted by a refresh, only marked inactive, because mappings and
subscriptions hang off them.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import msgspec

from quasar_tui.core import symbols
from quasar_tui.core.errors import NotFoundError, QuasarError
from quasar_tui.core.messages import one_line
from quasar_tui.sandbox.client import HostError
from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database

_COLUMNS = ("symbol", "name", "exchange", "asset_class", "base", "quote", "provider_id", "figi")

PROVIDER = "SELECT name, kind, capabilities FROM providers WHERE name = $1"
HAS_TRIGRAM = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')"

CREATE_STAGING = """
CREATE TEMP TABLE asset_staging (
    symbol text PRIMARY KEY, name text, exchange text, asset_class text,
    base text, quote text, provider_id text, figi text
) ON COMMIT DROP
"""

# Only rows that are new or changed come back; `inserted` tells which is which.
UPSERT_FROM_STAGING = """
INSERT INTO assets AS a (provider, symbol, name, exchange, asset_class, base, quote,
                         provider_id, figi, active, updated_at)
SELECT $1, s.symbol, s.name, s.exchange, s.asset_class, s.base, s.quote, s.provider_id,
       s.figi, true, now()
FROM asset_staging s
ON CONFLICT (provider, symbol) DO UPDATE SET
    name = EXCLUDED.name, exchange = EXCLUDED.exchange, asset_class = EXCLUDED.asset_class,
    base = EXCLUDED.base, quote = EXCLUDED.quote, provider_id = EXCLUDED.provider_id,
    figi = EXCLUDED.figi, active = true, updated_at = now()
WHERE (a.name, a.exchange, a.asset_class, a.base, a.quote, a.provider_id, a.figi, a.active)
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.exchange, EXCLUDED.asset_class, EXCLUDED.base, EXCLUDED.quote,
       EXCLUDED.provider_id, EXCLUDED.figi, true)
RETURNING (xmax = 0) AS inserted
"""

DEACTIVATE_MISSING = """
UPDATE assets a SET active = false, updated_at = now()
WHERE a.provider = $1 AND a.active
  AND NOT EXISTS (SELECT 1 FROM asset_staging s WHERE s.symbol = a.symbol)
"""

_SELECT = """
SELECT a.provider, a.symbol, a.name, a.exchange, a.asset_class, a.base, a.quote,
       a.provider_id, a.figi, a.active, a.updated_at, m.common_symbol
FROM assets a
LEFT JOIN asset_mappings m ON m.provider = a.provider AND m.symbol = a.symbol
"""

GET = _SELECT + "WHERE a.provider = $1 AND a.symbol = $2"

COUNT = "SELECT count(*) FROM assets WHERE provider = $1 AND active"

# $2 search text (NULL: no search), $3 the same as an escaped ILIKE pattern, $4 only active
# unmapped assets.
# Ranked: exact symbol, symbol prefix, then trigram similarity or substring position.
SEARCH_TRIGRAM = (
    _SELECT
    + """
WHERE a.provider = $1
  AND ($2::text IS NULL
       OR a.symbol ILIKE '%' || $3 || '%' OR a.name ILIKE '%' || $3 || '%'
       OR a.symbol % $2 OR $2 <% a.name)
  AND (NOT $4 OR (m.common_symbol IS NULL AND a.active))
ORDER BY a.active DESC,
         upper(a.symbol) = upper($2) DESC NULLS LAST,
         a.symbol ILIKE $3 || '%' DESC NULLS LAST,
         greatest(similarity(a.symbol, $2), word_similarity($2, a.name)) DESC NULLS LAST,
         a.symbol
LIMIT $5 OFFSET $6
"""
)

SEARCH_PLAIN = (
    _SELECT
    + """
WHERE a.provider = $1
  AND ($2::text IS NULL
       OR a.symbol ILIKE '%' || $3 || '%' OR a.name ILIKE '%' || $3 || '%')
  AND (NOT $4 OR (m.common_symbol IS NULL AND a.active))
ORDER BY a.active DESC,
         upper(a.symbol) = upper($2) DESC NULLS LAST,
         a.symbol ILIKE $3 || '%' DESC NULLS LAST,
         a.symbol ILIKE '%' || $3 || '%' DESC NULLS LAST,
         a.name ILIKE $3 || '%' DESC NULLS LAST,
         a.symbol
LIMIT $5 OFFSET $6
"""
)

ALL_SYMBOLS = "SELECT symbol FROM assets WHERE provider = $1"


class SymbolSource(Protocol):
    """What a refresh needs from a provider instance."""

    async def fetch_available_symbols(self) -> list[Any]: ...


@dataclass(frozen=True)
class AssetRecord:
    provider: str
    symbol: str
    name: str | None
    exchange: str | None
    asset_class: str | None
    base: str | None
    quote: str | None
    provider_id: str | None
    figi: str | None
    active: bool
    updated_at: datetime
    common_symbol: str | None

    @property
    def parts(self) -> symbols.SymbolParts:
        return symbols.parse(
            self.symbol, base=self.base, quote=self.quote, asset_class=self.asset_class
        )


@dataclass(frozen=True)
class RefreshReport:
    """`updated` counts rows whose details changed or that came back after being delisted."""

    added: int
    updated: int
    deactivated: int
    total: int


async def provider_row(conn: asyncpg.Connection | Database, name: str) -> asyncpg.Record:
    row = await conn.fetchrow(PROVIDER, name)
    if row is None:
        raise NotFoundError(f"no provider named {name!r}; see `quasar provider list`")
    return row


async def has_trigram(conn: asyncpg.Connection | Database) -> bool:
    return bool(await conn.fetchval(HAS_TRIGRAM))


async def close_matches(
    conn: asyncpg.Connection | Database, provider: str, symbol: str, n: int = 5
) -> list[str]:
    """Symbols of `provider` a user who typed `symbol` probably meant; same key first."""
    known = [r["symbol"] for r in await conn.fetch(ALL_SYMBOLS, provider)]
    wanted = symbols.key(symbol)
    same = [s for s in known if symbols.key(s) == wanted]
    by_upper = {s.upper(): s for s in known}
    near = difflib.get_close_matches(symbol.upper(), list(by_upper), n=n, cutoff=0.7)
    found = dict.fromkeys(same + [by_upper[s] for s in near])
    return list(found)[:n]


async def unknown_symbol_error(
    conn: asyncpg.Connection | Database, provider: str, symbol: str
) -> NotFoundError:
    """'KRAKEN has no asset FOO', with close matches or how to look for one."""
    matches = await close_matches(conn, provider, symbol)
    if matches:
        hint = "did you mean " + ", ".join(matches) + "?"
    else:
        hint = (
            f"see `quasar assets list {provider} --search {shlex.quote(symbol)}` "
            f"or `quasar assets refresh {provider}`"
        )
    return NotFoundError(f"{provider} has no asset {symbol!r}; {hint}")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_row(item: Any, provider: str) -> tuple[str | None, ...]:
    if isinstance(item, SymbolInfo):
        data: Mapping[str, Any] = msgspec.structs.asdict(item)
    elif isinstance(item, Mapping):
        data = item
    else:
        raise QuasarError(
            f"{provider}: fetch_available_symbols returned an item of type "
            f"{type(item).__name__}; expected SymbolInfo"
        )
    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise QuasarError(f"{provider}: fetch_available_symbols returned an entry with no symbol")
    values = [None if data.get(c) is None else str(data.get(c)) for c in _COLUMNS[1:]]
    return (symbol.strip(), *values)


class AssetStore:
    """Assets per provider: refresh, list with incremental search, look-ups."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._trigram: bool | None = None

    async def _uses_trigram(self) -> bool:
        if self._trigram is None:
            self._trigram = await has_trigram(self.db)
        return self._trigram

    async def refresh(self, provider_name: str, provider: SymbolSource) -> RefreshReport:
        """Fetch the provider's symbols and write them all in one transaction."""
        await provider_row(self.db, provider_name)
        try:
            listed = await provider.fetch_available_symbols()
        except Exception as exc:  # the provider's own code: any failure is the user's to see
            reason = exc.reason if isinstance(exc, HostError) else one_line(exc)
            raise QuasarError(
                f"{provider_name}: fetching symbols failed ({reason}); stored assets unchanged"
            ) from exc
        if not listed:
            raise QuasarError(f"{provider_name} listed no symbols; stored assets unchanged")
        rows = {row[0]: row for row in (_as_row(item, provider_name) for item in listed)}
        async with self.db.pool.acquire() as conn, conn.transaction():
            await conn.execute(CREATE_STAGING)
            await conn.copy_records_to_table(
                "asset_staging", records=list(rows.values()), columns=list(_COLUMNS)
            )
            changed = await conn.fetch(UPSERT_FROM_STAGING, provider_name)
            status = await conn.execute(DEACTIVATE_MISSING, provider_name)
        added = sum(1 for r in changed if r["inserted"])
        return RefreshReport(
            added=added,
            updated=len(changed) - added,
            deactivated=int(status.split()[-1]),
            total=len(rows),
        )

    async def list(
        self,
        provider: str,
        search: str | None = None,
        *,
        unmapped_only: bool = False,
        limit: int = 200,
        offset: int = 0,
    ) -> list[AssetRecord]:
        """Active assets first; with `search`, the best matches first."""
        await provider_row(self.db, provider)
        text = search.strip() if search and search.strip() else None
        pattern = _escape_like(text) if text else None
        query = SEARCH_TRIGRAM if text and await self._uses_trigram() else SEARCH_PLAIN
        rows = await self.db.fetch(query, provider, text, pattern, unmapped_only, limit, offset)
        return [AssetRecord(**dict(r)) for r in rows]

    async def get(self, provider: str, symbol: str) -> AssetRecord:
        row = await self.db.fetchrow(GET, provider, symbol)
        if row is None:
            await provider_row(self.db, provider)
            raise await unknown_symbol_error(self.db, provider, symbol)
        return AssetRecord(**dict(row))

    async def count(self, provider: str) -> int:
        """Active assets of `provider`."""
        await provider_row(self.db, provider)
        return int(await self.db.fetchval(COUNT, provider))
