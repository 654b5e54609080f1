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
from quasar_tui.cli import db_cmd
from quasar_tui.core.errors import QuasarError

COMMAND_MODULES = [db_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quasar",
        description="Market-data collection with a terminal console. Without a command, "
        "opens the console; --daemon runs the collector headless.",
    )
    parser.add_argument("--version", action="version", version=f"quasar {__version__}")
    parser.add_argument("--dsn", metavar="URL", default=None,
                        help="PostgreSQL server to use instead of the embedded one "
                        "(env QUASAR_DSN)")
    parser.add_argument("--data-dir", metavar="DIR", default=None,
                        help="where the embedded database and the master key live "
                        "(env QUASAR_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return asyncio.run(handler(args))
    except QuasarError as exc:
        print(f"quasar: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
