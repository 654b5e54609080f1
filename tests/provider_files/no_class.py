from quasar_tui.sdk import HistoricalDataProvider

BASE = HistoricalDataProvider
