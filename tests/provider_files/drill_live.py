"""A live provider that misbehaves as its `misbehave` preference says, the way careless code
does: "block" calls sync code where the SDK wants async (`time.sleep`; a sync HTTP call does
the same), "crash" ends its process, "leak" keeps 1 GiB more, 16 MiB at a time, at every
connection attempt (yielding between chunks, as a leak in async code does, so it is the
memory limit that stops it and not the unresponsive-host watchdog). The test writes one copy
per name (`__NAME__`)."""

import asyncio
import os
import sys
import time

from quasar_tui.sdk import LiveDataProvider, Setting, SymbolInfo

HOARD = []


class Misbehaves(LiveDataProvider):
    name = "__NAME__"
    CONFIGURABLE = {"misbehave": Setting(default="block", choices=("block", "crash", "leak"))}

    async def fetch_available_symbols(self):
        return [SymbolInfo(symbol="X")]

    async def get_history(self, sym, start, end, interval):
        time.sleep(45)  # noqa: ASYNC251 - the bug this file is for
        for bar in ():
            yield bar

    async def _connect(self):
        misbehave = self.pref("misbehave")
        if misbehave == "block":
            time.sleep(45)  # noqa: ASYNC251 - the bug this file is for
        elif misbehave == "crash":
            print("giving up on everything", file=sys.stderr, flush=True)
            os._exit(3)
        for _ in range(64):
            HOARD.append(bytearray(16 * 2**20))
            await asyncio.sleep(0)
        raise ConnectionError("upstream refused")

    async def _subscribe(self, interval, symbols):
        return None

    async def _unsubscribe(self, symbols):
        return None

    async def _parse_message(self, message):
        return []
