"""Registry rows for tests: a provider row written directly (no child-process validation, so
tests stay fast) and assets written through the real refresh path."""

from __future__ import annotations

from collections.abc import Sequence

from quasar_tui.core.intervals import Interval
from quasar_tui.registry.assets import AssetStore, RefreshReport
from quasar_tui.sdk.models import SymbolInfo
from quasar_tui.store.database import Database

INSERT_PROVIDER = """
INSERT INTO providers (name, kind, class_name, source, sha256, capabilities)
VALUES ($1, $2, 'Test', '', md5($1), $3)
"""


class StaticSymbols:
    """A provider instance as far as a refresh is concerned."""

    def __init__(self, listed: Sequence[object]) -> None:
        self.listed = [SymbolInfo(symbol=s) if isinstance(s, str) else s for s in listed]

    async def fetch_available_symbols(self) -> list[object]:
        return self.listed


async def add_provider(
    db: Database,
    name: str,
    kind: str = "historical",
    *,
    intervals: Sequence[str] = tuple(i.value for i in Interval),
    has_history: bool = True,
    assets: Sequence[SymbolInfo | str] = (),
) -> RefreshReport | None:
    capabilities = {"intervals": list(intervals), "has_history": has_history}
    await db.execute(INSERT_PROVIDER, name, kind, capabilities)
    if assets:
        return await AssetStore(db).refresh(name, StaticSymbols(assets))
    return None
