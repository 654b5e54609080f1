"""`quasar serve`: the read-only HTTP API on the database, following what the engine publishes."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quasar_tui.cli.common import leaf, positive_int
from quasar_tui.cli.context import database_from_args
from quasar_tui.core.errors import InvalidInputError
from quasar_tui.registry.secrets import Keyring
from quasar_tui.serve.bind import DEFAULT_HOST, DEFAULT_PORT, Bind, exposure_warning
from quasar_tui.store.server import resolve_data_dir

if TYPE_CHECKING:
    from quasar_tui.engine.engine import Engine

_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


def register(sub: argparse._SubParsersAction) -> None:
    cmd = leaf(
        sub,
        "serve",
        "serve stored and live market data over HTTP (read-only, API keys)",
        description="Serve the read-only HTTP API: /v1/symbols, /v1/bars, /v1/ticks, /v1/gaps, "
        "/v1/status, the WebSocket /v1/stream, /health, /ready and /metrics; docs at /docs. "
        "Requests need an API key (`quasar apikey create NAME`). Live data follows what a "
        "running engine (`quasar --daemon` or a console) publishes in the database. Logs one "
        "JSON line per request on stderr.",
    )
    cmd.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})"
    )
    cmd.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})"
    )
    cmd.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate for HTTPS")
    cmd.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key for HTTPS")
    cmd.add_argument(
        "--cache-ttl",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="keep answers at most this long (default 5; 0 turns the cache off)",
    )
    cmd.add_argument(
        "--cache-mb",
        type=positive_int,
        default=64,
        metavar="MB",
        help="memory for cached answers (default 64)",
    )
    cmd.add_argument(
        "--probes-need-key",
        action="store_true",
        help="require a key for /health, /ready and /metrics from loopback clients too",
    )
    cmd.add_argument(
        "--cors-origin",
        type=web_origin,
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (https://dash.example:3000) call the API; repeatable",
    )
    cmd.set_defaults(handler=run_server)


def web_origin(text: str) -> str:
    """argparse type for `--cors-origin`: a web origin as browsers send it, or `*`."""
    origin = text.strip().rstrip("/")
    if origin != "*" and not _ORIGIN.match(origin):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a web origin: give scheme://host[:port], e.g. https://dash.example"
        )
    return origin


def _bind(args: argparse.Namespace) -> Bind:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise InvalidInputError("give both --tls-cert and --tls-key, or neither")
    for option, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            raise InvalidInputError(f"{option} {path}: no such file")
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port {args.port}: use 1 to 65535 (0 picks a free port)")
    if args.cache_ttl < 0:
        raise InvalidInputError("--cache-ttl cannot be negative")
    return Bind(args.host, args.port, args.tls_cert, args.tls_key)


def bind_address(text: str) -> Bind:
    """argparse type for `--serve [HOST:]PORT` (`8400`, `0.0.0.0:8400`, `[::1]:8400`)."""
    host, colon, port = text.rpartition(":")
    host = host.strip("[]") if colon else DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not [HOST:]PORT, e.g. 8400") from None
    if not 1 <= number <= 65535 or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not [HOST:]PORT with a port of 1 to 65535")
    return Bind(host, number)


def beside_engine(args: argparse.Namespace) -> Callable[[Engine], Coroutine[Any, Any, None]]:
    """The API in the daemon's process (`quasar --daemon --serve`): live data straight from the
    engine's event bus, stored data through the engine's database pool."""
    from quasar_tui.serve.access import configure_logging
    from quasar_tui.serve.app import ServeOptions, create_app
    from quasar_tui.serve.server import serve

    bind: Bind = args.serve
    warning = exposure_warning(bind)
    if warning:
        print(warning, file=sys.stderr)
    keyring = Keyring.load_or_create(resolve_data_dir(args.data_dir))

    options = ServeOptions(cors_origins=tuple(args.serve_cors_origin))

    async def run(engine: Engine) -> None:
        configure_logging()
        app = create_app(engine.db, keyring, options, events=engine.bus)
        await serve(app, bind, handle_signals=False)

    return run


async def run_server(args: argparse.Namespace) -> int:
    # Imported here: FastAPI and uvicorn load only for this command.
    from quasar_tui.serve.access import configure_logging
    from quasar_tui.serve.app import ServeOptions, create_app
    from quasar_tui.serve.server import serve

    bind = _bind(args)
    warning = exposure_warning(bind)
    if warning:
        print(warning, file=sys.stderr)
    configure_logging()
    keyring = Keyring.load_or_create(resolve_data_dir(args.data_dir))
    options = ServeOptions(
        cache_ttl=args.cache_ttl,
        cache_bytes=args.cache_mb * 2**20,
        probes_need_key=args.probes_need_key,
        cors_origins=tuple(args.cors_origin),
    )
    async with database_from_args(args, max_size=10) as db:
        await serve(create_app(db, keyring, options), bind)
    return 0
