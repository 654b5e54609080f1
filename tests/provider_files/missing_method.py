from quasar_tui.sdk import HistoricalDataProvider


class Foo(HistoricalDataProvider):
    name = "foo"

    async def fetch_available_symbols(self):
        return []
