"""Tries, at run time, what a provider host must not allow; each probe's outcome is returned as
a symbol so the test can read it."""

import ctypes
import os
import socket
import sys
from pathlib import Path

from quasar_tui.sdk import HistoricalDataProvider, Setting, SymbolInfo


def _try(action):
    try:
        return f"allowed: {action()!r}"[:80]
    except OSError as exc:
        return f"refused: {type(exc).__name__}"


def _undo_parent_death_signal():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")
    return 0


class Snoop(HistoricalDataProvider):
    name = "snoop"
    SECRETS = ("api_key",)
    CONFIGURABLE = {
        "target": Setting(default="", help="a file outside the sandbox"),
        "nearby": Setting(default="", help="a file beside Quasar's package, outside it"),
    }

    async def fetch_available_symbols(self):
        target = self.pref("target")
        probes = {
            "read_target": lambda: Path(target).read_bytes(),
            "read_nearby": lambda: Path(self.pref("nearby")).read_bytes(),
            "list_target_dir": lambda: os.listdir(os.path.dirname(target)),
            "fork": os.fork,
            "unix_socket": lambda: socket.socket(socket.AF_UNIX),
            "write_private": lambda: Path("scratch.txt").write_text("ok"),
            "quasar_env": lambda: sorted(k for k in os.environ if k.startswith("QUASAR")),
            "secret": lambda: self.context.get("api_key"),
            "kill_parent": lambda: os.kill(os.getppid(), 0),
            "undo_parent_death_signal": _undo_parent_death_signal,
        }
        return [SymbolInfo(symbol=key, name=_try(probe)) for key, probe in probes.items()]

    async def get_history(self, sym, start, end, interval):
        if sym == "EXIT":
            os._exit(3)
        if sym == "PRINT":
            for n in range(200):
                print(f"line {n}", flush=True)
        if sym == "FORGE":  # a frame of its own on the engine's pipe
            fd = int(sys.argv[sys.argv.index("--fd") + 1])
            os.write(fd, b"\x00\x00\x00\x04junk")
        if sym == "HOG":
            hoard = b"x" * (2 * 1024**3)
            yield hoard
        if sym == "HANG":
            while True:
                pass
        if sym == "SLEEP":
            import time

            time.sleep(2.6)  # noqa: ASYNC251 - the blocking call the host must report
        for bar in ():
            yield bar
