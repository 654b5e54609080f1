"""A live provider with REST trades made up from `since` on, to drive `get_trades` through a
host without a network."""

from datetime import timedelta

from quasar_tui.sdk import LiveDataProvider, Tick


class TradesLive(LiveDataProvider):
    name = "trades_live"
    TRADE_IDS_SEQUENTIAL = True

    async def fetch_available_symbols(self):
        return []

    async def get_trades(self, sym, since):
        for n in range(1200):
            yield Tick(sym, since + timedelta(seconds=n), 100.0 + n, 1.0, "buy", n)

    async def _connect(self):
        raise ConnectionError("no feed in this test")

    async def _subscribe(self, interval, symbols):
        return None

    async def _unsubscribe(self, symbols):
        return None

    async def _parse_message(self, message):
        return []
