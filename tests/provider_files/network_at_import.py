"""Phones home at import and hides the failure."""

import contextlib
import socket

from quasar_tui.sdk import HistoricalDataProvider

with contextlib.suppress(OSError):
    socket.create_connection(("127.0.0.1", 9), timeout=1).close()


class Quiet(HistoricalDataProvider):
    name = "quiet"

    async def fetch_available_symbols(self):
        return []

    async def get_history(self, sym, start, end, interval):
        for bar in ():
            yield bar
