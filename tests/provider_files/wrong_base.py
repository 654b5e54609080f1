from quasar_tui.sdk import DataProvider


class Foo(DataProvider):
    name = "foo"

    async def fetch_available_symbols(self):
        return []
