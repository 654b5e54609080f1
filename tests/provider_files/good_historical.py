"""A historical provider that makes its bars up, so tests can run it without a network."""

from quasar_tui.sdk import Bar, HistoricalDataProvider, Interval, Setting, SymbolInfo


class Synthetic(HistoricalDataProvider):
    name = "synthetic"
    INTERVALS = (Interval.H1, Interval.D1)
    SECRETS = ("api_key",)
    CONFIGURABLE = {
        "base_price": Setting(type="float", default=100.0, help="first bar's open"),
        "adjusted": Setting(type="bool", default=True, help="split-adjusted prices"),
        "venue": Setting(default="XNYS", help="exchange code", choices=("XNYS", "XNAS")),
    }

    async def fetch_available_symbols(self):
        return [SymbolInfo(symbol="AAA", name="Triple A"), SymbolInfo(symbol="BBB")]

    async def get_history(self, sym, start, end, interval):
        price = self.pref("base_price")
        for ts in interval.starts(start, end):
            yield Bar(ts=ts, open=price, high=price + 1, low=price - 1, close=price, volume=1.0)
            price += 1
