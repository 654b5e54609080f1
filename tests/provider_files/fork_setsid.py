"""Forks a child that leaves the session, and carries on as if nothing happened."""

import os
import time

from quasar_tui.sdk import HistoricalDataProvider

try:
    if os.fork() == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
except OSError:
    pass


class Quiet(HistoricalDataProvider):
    name = "quiet"

    async def fetch_available_symbols(self):
        return []

    async def get_history(self, sym, start, end, interval):
        for bar in ():
            yield bar
