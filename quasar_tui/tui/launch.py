"""From parsed arguments to a running console: data dir, database, demo seeding, keymap."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from quasar_tui import opening
from quasar_tui.core.errors import QuasarError
from quasar_tui.store.database import Database
from quasar_tui.store.server import open_server, release_server, resolve_data_dir, resolve_dsn
from quasar_tui.tui.app import QuasarApp
from quasar_tui.tui.demo import seed_demo
from quasar_tui.tui.keymap import find_keymap, load_keymap
from quasar_tui.tui.services import ConsoleOptions, Say, Services


def _demo_dir() -> Path:
    """A throw-away data dir, removed when the console closes its services, or else at exit
    (after the embedded server it holds stops: atexit runs in reverse order, and the server
    registers its stop later than this)."""
    path = Path(tempfile.mkdtemp(prefix="quasar-demo-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def usage_problem(args: argparse.Namespace) -> str | None:
    """Console options that cannot work together, or no terminal (exit 2, a usage error)."""
    if not (sys.stdin.isatty() and sys.__stderr__ is not None and sys.__stderr__.isatty()):
        return (
            "the console needs a terminal on stdin and stderr (over SSH use `ssh -t`); "
            "for no screen use `quasar --daemon` or a subcommand"
        )
    if args.demo and (args.dsn or args.data_dir):
        return "--demo uses its own throw-away database; drop --dsn and --data-dir"
    if args.fps is not None and args.fps < 1:
        return f"--fps must be 1 or more, not {args.fps}"
    return None


def options_from(args: argparse.Namespace, data_dir: Path | None) -> ConsoleOptions:
    """Raises `KeymapError` for a keymap file that cannot be used."""
    fps = getattr(args, "fps", None)
    keymap_path = find_keymap(getattr(args, "keymap", None), data_dir)
    animation = not getattr(args, "no_animation", False)
    return ConsoleOptions(
        animation=animation,
        clock=animation,
        fps=fps,
        keymap=load_keymap(keymap_path) if keymap_path else {},
        keymap_path=keymap_path,
    )


@asynccontextmanager
async def console_services(
    dsn: str | None, data_dir: Path, demo: bool, say: Say
) -> AsyncIterator[Services]:
    server = await asyncio.to_thread(open_server, dsn, data_dir)  # the loop keeps painting
    db = await Database.open(server)
    try:
        if demo:
            say("Preparing the demo: the simulated market, mapped and subscribed...")
            await seed_demo(db, data_dir)
        async with Services.running(db, data_dir, say=say) as services:
            yield services
    finally:
        await db.close()
        if server.embedded:
            say("Stopping the database server, unless another process uses it...")
            await asyncio.to_thread(release_server, server)
        if demo:  # seconds of file removal: on the screen, not after it
            say("Removing the demo's throw-away database...")
            await asyncio.to_thread(shutil.rmtree, data_dir, ignore_errors=True)


def main(args: argparse.Namespace) -> int:
    if problem := usage_problem(args):
        print(f"quasar: error: {problem}", file=sys.stderr)
        return 2
    try:
        data_dir = _demo_dir() if args.demo else resolve_data_dir(args.data_dir)
        options = options_from(args, data_dir)
    except QuasarError as exc:
        print(f"quasar: error: {exc}", file=sys.stderr)
        return 1
    dsn = None if args.demo else resolve_dsn(args.dsn)
    app = QuasarApp(partial(console_services, dsn, data_dir, args.demo), options)
    opening.handed_over()
    try:
        asyncio.run(app.run_async())
    except KeyboardInterrupt:
        return 130
    return app.return_code or 0
