from quasar_tui.sdk import HistoricalDataProvider


class ListHistory(HistoricalDataProvider):
    name = "list_history"

    async def fetch_available_symbols(self):
        return []

    async def get_history(self, sym, start, end, interval):
        return []
