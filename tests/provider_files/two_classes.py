from quasar_tui.sdk import HistoricalDataProvider


class A(HistoricalDataProvider):
    name = "a"

    async def fetch_available_symbols(self):
        return []

    async def get_history(self, sym, start, end, interval):
        yield


class B(A):
    name = "b"
