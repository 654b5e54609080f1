"""`quasar --daemon`: the engine with no UI, for servers and containers.

Logs go to stderr as text or JSON lines. SIGTERM and SIGINT stop the engine, which flushes the
writer before the process exits 0. With `--standby` a daemon started while another engine (a
console) holds the lock waits for it and takes over when it stops, rather than exiting 1 (which a
service manager restarting on failure would turn into a restart loop). Nothing here (or below)
imports Textual or rich.live.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg

from quasar_tui.core.errors import QuasarError
from quasar_tui.core.text import printable
from quasar_tui.engine.engine import Engine
from quasar_tui.engine.lock import EngineLockedError
from quasar_tui.store.database import open_database
from quasar_tui.store.server import resolve_data_dir, resolve_dsn

log = logging.getLogger("quasar.daemon")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """Plain lines whose every control character is escaped: messages quote providers."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(printable(line) for line in super().format(record).split("\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg (and exc when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(fmt: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(_TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter that would drown the engine's own lines.
    for name in ("apscheduler", "httpx", "httpcore", "websockets", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)


#: Something to run beside the engine for as long as it runs (the HTTP API with --serve); it
#: is given the running engine and cancelled when the engine stops.
Beside = Callable[[Engine], Coroutine[Any, Any, None]]


async def run(args: argparse.Namespace, beside: Beside | None = None) -> int:
    """Run the engine until SIGTERM/SIGINT; exit 0 after a clean stop.

    A failure the user can act on (another engine holds the lock, no database, the API's port
    taken) is one log line, in the chosen format, and exit status 1.
    """
    configure_logging(args.log_format)
    try:
        return await _serve(args, beside)
    except EngineLockedError as exc:
        log.error(
            "%s; stop it first, or start the daemon with --standby to wait for it and take "
            "over when it stops",
            exc.running,
        )
        return 1
    except QuasarError as exc:
        log.error("%s", exc)
        return 1
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.error("database error, stopping: %s: %s", type(exc).__name__, exc)
        return 1


async def _serve(args: argparse.Namespace, beside: Beside | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        data_dir = resolve_data_dir(args.data_dir)
        db = await open_database(resolve_dsn(args.dsn), data_dir)
        try:
            log.info("database: %s", db.server.describe())
            engine = Engine.create(db, data_dir=data_dir, mode="daemon")
            await _first(engine.start(wait=getattr(args, "standby", False)), stop.wait())
            if not engine.running:  # a signal came first (on standby, or while starting)
                when = "on standby" if engine.owner is None else "while the engine was starting"
                log.info("stopped cleanly %s", when)
                return 0
            waits = [stop.wait(), engine.wait_stopped()]
            if beside is not None:
                waits.append(beside(engine))
            try:
                await _first(*waits)
            finally:
                log.info("stopping: flushing the writer")
                await engine.stop()
        finally:
            await db.close()
    finally:
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
    if engine.failure:
        log.error("engine stopped: %s", engine.failure)
        return 1
    log.info("stopped cleanly")
    return 0


async def _first(*aws: Coroutine[Any, Any, Any]) -> None:
    """Wait until any of `aws` finishes; cancel the rest. An error of the one that finished
    is raised (a task beside the engine that cannot run stops the daemon, with its reason)."""
    tasks = [asyncio.create_task(aw) for aw in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
