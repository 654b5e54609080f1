"""Starts a helper in a new session (it would outlive the validator), catching any refusal."""

import contextlib
import subprocess
import sys

from quasar_tui.sdk import HistoricalDataProvider

MARK = "quasar-hostile-grandchild"
with contextlib.suppress(OSError):
    subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", MARK], start_new_session=True
    )


class Quiet(HistoricalDataProvider):
    name = "quiet"

    async def fetch_available_symbols(self):
        return []

    async def get_history(self, sym, start, end, interval):
        for bar in ():
            yield bar
