"""`python -m quasar_tui.store.reaper DATA_DIR`: stops the embedded server once every process
that used it has died, so a server never outlives its users even when they were killed (kill -9).

One per data dir, spawned detached just before a start when none runs (its pid is in
`pg.watcher`). Every few seconds, under the data dir's lock, it prunes the users' pids; when
none is alive it stops the server (unless one is still starting) and leaves. It stays through
an outage while users are alive, so the restarted server is watched too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from quasar_tui.store.embedded import EmbeddedServer

PERIOD = 2.0


def watch(data_dir: Path, period: float = PERIOD) -> None:
    server = EmbeddedServer(data_dir)
    while True:
        with server.locked():
            if not server.starting() and server.stop_if_unused():
                server.forget_watcher()
                return
        time.sleep(period)


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
