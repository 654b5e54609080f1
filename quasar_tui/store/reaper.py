"""`python -m quasar_tui.store.reaper DATA_DIR`: stops the embedded server once every process
that used it has died, so a server never outlives its users even when they were killed (kill -9).

The process that starts the server spawns this, detached, just before the start. Every few
seconds, under the data dir's lock, it looks at the server: it waits while it is starting,
then watches that postmaster, stops it when no user is alive, and exits once it is down or
replaced (a restarted server gets a watcher of its own).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from quasar_tui.store.embedded import EmbeddedServer

PERIOD = 2.0


def watch(data_dir: Path, period: float = PERIOD) -> None:
    server = EmbeddedServer(data_dir)
    watched: int | None = None
    while True:
        with server.locked():
            postmaster = server.running()
            if postmaster is None:
                if watched is not None or not server.starting():
                    return  # down, or its start failed
            elif watched not in (None, postmaster.pid):
                return
            else:
                watched = postmaster.pid
                if server.stop_if_unused():
                    return
        time.sleep(period)


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
