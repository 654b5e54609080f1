"""What every benchmark shares: a throw-away embedded database and printing figures."""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from quasar_tui.store.database import Database
from quasar_tui.store.server import start_embedded


@asynccontextmanager
async def scratch_database(**kwargs: Any) -> AsyncIterator[Database]:
    """A migrated database on an embedded server in a temporary data dir.

    The server stops when the process exits and the dir is removed after that (atexit runs in
    reverse order of registration): removed while the server runs, the dir would take the
    server's stop with it and leave the server running on.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="quasar-bench-"))
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    db = await Database.open(start_embedded(data_dir), **kwargs)
    try:
        yield db
    finally:
        await db.close()


def cpu_model() -> str:
    """The CPU's model name (Linux), else what the platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text(encoding="utf-8") if cpuinfo.exists() else ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """What a figure was measured on: figures only hold on the same kind of machine."""
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "date": datetime.now(UTC).date().isoformat(),
    }


def report(figures: dict[str, Any]) -> None:
    """The last line of output: one JSON object."""
    print(json.dumps({**figures, "machine": machine()}, default=str))
