"""The `quasar` command: console, daemon, or a one-shot subcommand.

Each `*_cmd` module registers its subcommands; a handler is `async def (args) -> int`.
User mistakes raise `QuasarError` and end here as one line on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from quasar_tui import __version__
from quasar_tui.cli import (
    apikey_cmd,
    assets_cmd,
    bars_cmd,
    db_cmd,
    export_cmd,
    map_cmd,
    provider_cmd,
    serve_cmd,
    status_cmd,
    subscribe_cmd,
)
from quasar_tui.core.errors import QuasarError

COMMAND_MODULES = [
    db_cmd,
    provider_cmd,
    assets_cmd,
    map_cmd,
    subscribe_cmd,
    status_cmd,
    bars_cmd,
    export_cmd,
    serve_cmd,
    apikey_cmd,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quasar",
        description="Market-data collection with a terminal console. Without a command, "
        "opens the console; --daemon runs the collector headless.",
    )
    parser.add_argument("--version", action="version", version=f"quasar {__version__}")
    parser.add_argument(
        "--dsn",
        metavar="URL",
        default=None,
        help="PostgreSQL server to use instead of the embedded one (env QUASAR_DSN)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="where the embedded database and the master key live (env QUASAR_DATA_DIR)",
    )
    parser.add_argument(
        "--daemon",
        action="store_true",
        help="run the collector engine headless (no console) until SIGTERM",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="daemon log lines on stderr: text (default) or JSON",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="console on a throw-away database with simulated live feeds",
    )
    parser.add_argument(
        "--no-animation",
        action="store_true",
        help="console: no animations or flashing cells (slow links)",
    )
    parser.add_argument(
        "--fps",
        type=int,
        metavar="N",
        default=None,
        help="console: at most N screen updates a second (slow links)",
    )
    parser.add_argument(
        "--keymap",
        metavar="FILE",
        default=None,
        help="console: TOML file remapping keys by binding id "
        "(default: keymap.toml in the data dir)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if args.daemon:
        if handler is not None:
            parser.error("--daemon runs on its own; drop the command")
        from quasar_tui import daemon  # imported here: one-shot commands do not need it

        handler = daemon.run
    elif handler is None:
        from quasar_tui.tui import run as run_console  # the only path that loads Textual

        return run_console(args)
    try:
        return asyncio.run(handler(args))
    except QuasarError as exc:
        print(f"quasar: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
