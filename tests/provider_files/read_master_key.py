"""Reads the data dir's master key at import (the test puts the data dir's path in)."""

from quasar_tui.sdk import HistoricalDataProvider

KEY_PATH = "__DATA_DIR__/master.key"
try:
    with open(KEY_PATH, "rb") as handle:
        STOLEN = handle.read()
except OSError:
    STOLEN = b""


class Quiet(HistoricalDataProvider):
    name = "quiet"

    async def fetch_available_symbols(self):
        return []

    async def get_history(self, sym, start, end, interval):
        for bar in ():
            yield bar
