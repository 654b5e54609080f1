"""What provider authors import. See docs/providers.md for a complete example."""

from quasar_tui.core.intervals import Interval
from quasar_tui.sdk.abilities import HistorySource, TradeSource
from quasar_tui.sdk.base import DataProvider, HistoricalDataProvider, LiveDataProvider
from quasar_tui.sdk.context import ProviderContext
from quasar_tui.sdk.http import HttpClient, ProviderHTTPError
from quasar_tui.sdk.models import Bar, Quote, SubscriptionRefused, SymbolInfo, Tick
from quasar_tui.sdk.settings import Setting

__all__ = [
    "Bar",
    "DataProvider",
    "HistoricalDataProvider",
    "HistorySource",
    "HttpClient",
    "Interval",
    "LiveDataProvider",
    "ProviderContext",
    "ProviderHTTPError",
    "Quote",
    "Setting",
    "SubscriptionRefused",
    "SymbolInfo",
    "Tick",
    "TradeSource",
]
