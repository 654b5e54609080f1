"""A non-daemon thread started at import and never stopped."""

import threading
import time

from quasar_tui.sdk import HistoricalDataProvider

threading.Thread(target=time.sleep, args=(600,), name="poller").start()


class Quiet(HistoricalDataProvider):
    name = "quiet"

    async def fetch_available_symbols(self):
        return []

    async def get_history(self, sym, start, end, interval):
        for bar in ():
            yield bar
