"""Which stored series a name means: a common symbol through its mappings, in the user's
provider order, or one provider's own symbol.

Every reader (console, `quasar bars`/`export`, the Python API, the HTTP API) resolves names
here, so `BTC/USD` means the same series everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from quasar_tui.core.errors import NotFoundError
from quasar_tui.core.series import SeriesName, parse_series
from quasar_tui.store.database import Database

# Per-symbol order first, then the global default order, then the provider's name.
_MAPPED = """
    SELECT m.provider, m.symbol, m.common_symbol
      FROM asset_mappings m
      LEFT JOIN symbol_priority sp
             ON sp.common_symbol = m.common_symbol AND sp.provider = m.provider
      LEFT JOIN provider_priority pp ON pp.provider = m.provider
     WHERE m.common_symbol = $1
     ORDER BY sp.rank NULLS LAST, pp.rank NULLS LAST, m.provider
"""

_COMMON_OF = "SELECT common_symbol FROM asset_mappings WHERE provider = $1 AND symbol = $2"

_COMMONS = "SELECT provider, symbol, common_symbol FROM asset_mappings"

_PROVIDER_EXISTS = "SELECT EXISTS (SELECT 1 FROM providers WHERE name = $1)"

# Every mapped series, in each common symbol's provider order, then subscribed series that
# have no mapping.
_ALL = """
    SELECT m.common_symbol, m.provider, m.symbol, sp.rank AS symbol_rank, pp.rank AS global_rank
      FROM asset_mappings m
      LEFT JOIN symbol_priority sp
             ON sp.common_symbol = m.common_symbol AND sp.provider = m.provider
      LEFT JOIN provider_priority pp ON pp.provider = m.provider
    UNION
    SELECT NULL, s.provider, s.symbol, NULL, NULL
      FROM subscriptions s
     WHERE NOT EXISTS (
           SELECT 1 FROM asset_mappings m WHERE m.provider = s.provider AND m.symbol = s.symbol)
     ORDER BY 1 NULLS LAST, 4 NULLS LAST, 5 NULLS LAST, 2, 3
"""


@dataclass(frozen=True)
class Series:
    """One provider's series, with the common symbol it is mapped to (if any)."""

    provider: str
    symbol: str
    common: str | None = None

    @property
    def key(self) -> str:
        """`PROVIDER:SYMBOL`, the name that always means exactly this series."""
        return f"{self.provider}:{self.symbol}"

    @property
    def source(self) -> str:
        """Where it comes from, beside the common symbol in a table: the provider, with its
        own symbol when that differs (`KRAKEN:XBT/USD` for BTC/USD, `EODHD` for AAPL)."""
        return self.provider if self.common in (None, self.symbol) else self.key

    @property
    def label(self) -> str:
        """What a screen shows: the common symbol with the provider's symbol beside it."""
        return f"{self.common} ({self.key})" if self.common else self.key


async def resolve(
    db: Database, name: str | SeriesName, provider: str | None = None
) -> list[Series]:
    """The series a name stands for, best first; NotFoundError when it stands for none."""
    wanted = parse_series(name) if isinstance(name, str) else name
    if wanted.provider is not None:
        if provider is not None and provider != wanted.provider:
            raise NotFoundError(
                f"series {wanted} names provider {wanted.provider}, but --provider says "
                f"{provider}: give one of them"
            )
        common = await db.fetchval(_COMMON_OF, wanted.provider, wanted.symbol)
        return [Series(wanted.provider, wanted.symbol, common)]
    rows = await db.fetch(_MAPPED, wanted.symbol)
    found = [Series(r["provider"], r["symbol"], r["common_symbol"]) for r in rows]
    if provider is not None:
        found = [s for s in found if s.provider == provider]
        if not found:
            raise NotFoundError(await _no_mapping_for(db, wanted.symbol, provider, bool(rows)))
    if not found:
        raise NotFoundError(
            f"no series named {wanted.symbol!r}: it is not a mapped common symbol "
            "(see `quasar map list`); name one provider's symbol as PROVIDER:SYMBOL"
        )
    return found


async def _no_mapping_for(db: Database, common: str, provider: str, mapped: bool) -> str:
    if not await db.fetchval(_PROVIDER_EXISTS, provider):
        return (
            f"no provider named {provider!r} (names are case-sensitive; see `quasar provider list`)"
        )
    if not mapped:
        return (
            f"no series named {common!r}: it is not a mapped common symbol (see `quasar map list`)"
        )
    return (
        f"{provider} has no symbol mapped to {common}: map one with "
        f"`quasar map {common} {provider} SYMBOL`"
    )


async def all_series(db: Database) -> list[Series]:
    """Mapped series (common symbol, then provider order) and unmapped subscribed ones."""
    rows = await db.fetch(_ALL)
    return [Series(r["provider"], r["symbol"], r["common_symbol"]) for r in rows]


async def common_symbols(db: Database) -> dict[tuple[str, str], str]:
    """The common symbol of every mapped (provider, symbol), in one query: for screens and
    reports that label many rows."""
    return {(r["provider"], r["symbol"]): r["common_symbol"] for r in await db.fetch(_COMMONS)}
