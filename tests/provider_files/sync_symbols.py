from quasar_tui.sdk import HistoricalDataProvider


class SyncSymbols(HistoricalDataProvider):
    name = "sync_symbols"

    def fetch_available_symbols(self):
        return []

    async def get_history(self, sym, start, end, interval):
        for bar in ():
            yield bar
