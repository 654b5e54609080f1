"""The `quasar` command: console, daemon, or a one-shot subcommand.

Each `*_cmd` module registers its subcommands; a handler is `async def (args) -> int`.
Every failure ends here as one line on stderr: exit status 2 for a usage error (argparse's own
or a `UsageError`), 1 for a failed operation, and a quiet end when the reader of standard output
goes away (`| head`), as Unix tools do.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from quasar_tui import __version__
from quasar_tui.cli import (
    alert_cmd,
    apikey_cmd,
    assets_cmd,
    bars_cmd,
    db_cmd,
    export_cmd,
    gaps_cmd,
    map_cmd,
    provider_cmd,
    quality_cmd,
    serve_cmd,
    status_cmd,
    subscribe_cmd,
)
from quasar_tui.cli.common import bounded_int, non_empty_path
from quasar_tui.cli.data_dir import check_owner
from quasar_tui.cli.hidden_args import hide_in_arguments
from quasar_tui.cli.output import GuardedStdout, silence_stdout
from quasar_tui.core.errors import QuasarError, UsageError
from quasar_tui.core.messages import one_line
from quasar_tui.core.text import printable
from quasar_tui.store.server import dsn_passwords, dsn_problem, resolve_data_dir, resolve_dsn

COMMAND_MODULES = [
    db_cmd,
    provider_cmd,
    assets_cmd,
    map_cmd,
    subscribe_cmd,
    status_cmd,
    bars_cmd,
    gaps_cmd,
    quality_cmd,
    export_cmd,
    serve_cmd,
    apikey_cmd,
    alert_cmd,
]


USAGE_STATUS = 2
FAILED_STATUS = 1
BROKEN_PIPE_STATUS = 128 + 13  # what a shell reports for a tool ended by SIGPIPE


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (the usage is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            USAGE_STATUS,
            f"{self.prog}: error: {printable(message)} (see `{self.prog} --help`)\n",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
        type=non_empty_path,
        help="where the embedded database and the master key live (env QUASAR_DATA_DIR)",
    )
    parser.add_argument(
        "--daemon",
        action="store_true",
        help="run the collector engine headless (no console) until SIGTERM",
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="with --daemon: when another engine (a console) runs on the database, wait and "
        "take over when it stops, rather than exit 1",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="daemon log lines on stderr: text (default) or JSON",
    )
    parser.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        type=serve_cmd.bind_address,
        default=None,
        help="with --daemon: also serve the HTTP API from the engine's process "
        "(default host 127.0.0.1)",
    )
    parser.add_argument(
        "--serve-cors-origin",
        metavar="ORIGIN",
        type=serve_cmd.web_origin,
        action="append",
        default=[],
        help="with --serve: let web pages from ORIGIN call the API; repeatable",
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
        type=bounded_int(1, 240),
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
    dsn = args.dsn if args.dsn is not None else resolve_dsn(None)  # --dsn "" is a mistake
    if dsn is not None and (problem := dsn_problem(dsn)):
        return _fail(UsageError(problem), USAGE_STATUS)
    if args.dsn:
        hide_in_arguments(args.dsn, dsn_passwords(args.dsn))
    handler = getattr(args, "handler", None)
    try:
        check_owner(resolve_data_dir(args.data_dir))
    except QuasarError as exc:
        return _fail(exc, FAILED_STATUS)
    if args.serve_cors_origin and not args.serve:
        parser.error("--serve-cors-origin goes with --daemon --serve (or use `quasar serve`)")
    if args.daemon:
        if handler is not None:
            parser.error("--daemon runs on its own; drop the command")
        from quasar_tui import daemon  # imported here: one-shot commands do not need it

        beside = serve_cmd.beside_engine(args) if args.serve else None
        handler = functools.partial(daemon.run, beside=beside)
    elif args.serve:
        parser.error("--serve goes with --daemon (or use `quasar serve`)")
    elif args.standby:
        parser.error("--standby goes with --daemon")
    elif handler is None:
        from quasar_tui.tui import run as run_console  # the only path that loads Textual

        return run_console(args)
    return run_handler(handler, args)


def run_handler(
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], args: Any
) -> int:
    """Run one command to completion and turn every way it can end into an exit status."""
    original = sys.stdout
    sys.stdout = GuardedStdout(original)
    try:
        status = asyncio.run(handler(args))
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        silence_stdout()
        return BROKEN_PIPE_STATUS
    except UsageError as exc:
        return _fail(exc, USAGE_STATUS)
    except QuasarError as exc:
        return _fail(exc, FAILED_STATUS)
    except KeyboardInterrupt:
        return 130
    except EOFError:  # Ctrl-D at a prompt (a confirmation, a secret)
        return _fail(QuasarError("input ended before an answer: nothing changed"), FAILED_STATUS)
    except Exception as exc:  # the last edge: one line instead of a traceback
        return _fail(exc, FAILED_STATUS)
    finally:
        if isinstance(sys.stdout, GuardedStdout):  # not silenced: hand the stream back
            sys.stdout = original


def _fail(exc: BaseException, status: int) -> int:
    print(f"quasar: error: {printable(one_line(exc))}", file=sys.stderr)
    if not isinstance(sys.stdout, GuardedStdout):
        return status
    try:
        sys.stdout.flush()
    except (OSError, QuasarError):
        silence_stdout()
    return status


if __name__ == "__main__":
    sys.exit(main())
