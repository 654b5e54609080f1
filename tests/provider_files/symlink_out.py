"""Reads the data dir's master key through a symlink in its own directory (the test puts the
data dir's path in), and hides the failure."""

import os

from quasar_tui.sdk import HistoricalDataProvider

KEY_PATH = "__DATA_DIR__/master.key"
try:
    os.symlink(KEY_PATH, "innocent.txt")
    with open("innocent.txt", "rb") as handle:
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
