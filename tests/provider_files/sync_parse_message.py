from quasar_tui.sdk import LiveDataProvider


class Stream(LiveDataProvider):
    name = "stream"

    async def fetch_available_symbols(self):
        return []

    async def _connect(self):
        return None

    async def _subscribe(self, interval, symbols):
        return None

    async def _unsubscribe(self, symbols):
        return None

    def _parse_message(self, message):
        return []
