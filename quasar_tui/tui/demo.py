"""`quasar --demo`: a fresh database with the simulated market mapped and subscribed, so ticks,
a dashboard and charts show up at once with no account and no network, and a provider the
user adds finds common symbols to map onto."""

from __future__ import annotations

from pathlib import Path

from quasar_tui.registry.assets import AssetStore
from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.registry.subscriptions import SubscriptionStore
from quasar_tui.registry.suggestions import MappingSuggester
from quasar_tui.store.database import Database

PROVIDER = "SIMULATED"
LIVE_INTERVAL = "1min"
HISTORY = (("1d", 365), ("1h", 30))


async def seed_demo(db: Database, data_dir: Path) -> list[str]:
    """Register the bundled providers, list the simulated symbols, map each to the common
    symbol suggested, and subscribe all of them live and historical; returns the symbols."""
    registry = ProviderRegistry(db, Keyring.load_or_create(data_dir))
    await registry.ensure_bundled()
    await registry.refresh_assets(PROVIDER)  # in its sandbox host, as every provider runs
    symbols = [a.symbol for a in await AssetStore(db).list(PROVIDER)]
    suggester = MappingSuggester(db)
    await suggester.accept(await suggester.suggest(PROVIDER))
    subscriptions = SubscriptionStore(db)
    await subscriptions.add(PROVIDER, symbols, LIVE_INTERVAL, "live")
    for interval, days in HISTORY:
        await subscriptions.add(PROVIDER, symbols, interval, "historical", lookback_days=days)
    return symbols
