"""`quasar apikey create | list | revoke`: keys for the HTTP API (`quasar serve`).

A new key is printed once, on stdout, and never again: only a keyed hash of it is stored.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import UTC, date, datetime

from quasar_tui.cli.common import leaf, positive_int
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import print_json, print_table
from quasar_tui.core.intervals import utc
from quasar_tui.registry.apikeys import DEFAULT_RATE, SCOPES, ApiKeyStore, check_scopes
from quasar_tui.registry.secrets import Keyring
from quasar_tui.store.database import Database
from quasar_tui.store.server import resolve_data_dir

_COLUMNS = ["name", "scopes", "rate", "created_at", "expires_at", "last_used", "uses"]


def _scopes(text: str) -> list[str]:
    try:
        return check_scopes([s.strip() for s in text.split(",") if s.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _expiry(text: str) -> datetime:
    """A date means the start of that day, UTC; an ISO time is taken as given (naive = UTC)."""
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO time (YYYY-MM-DDTHH:MM)"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:
    apikey = sub.add_parser(
        "apikey",
        help="API keys for `quasar serve`",
        description="Create, list and revoke the keys that HTTP API clients send.",
    )
    asub = apikey.add_subparsers(dest="apikey_command", metavar="COMMAND", required=True)
    create = leaf(
        asub,
        "create",
        "create a key and print it once",
        description="Create an API key named NAME and print it once on stdout: store it now, "
        "it cannot be shown again (only a keyed hash is kept). Send it as X-API-Key or "
        "Authorization: Bearer.",
    )
    create.add_argument("name", metavar="NAME", help="who or what uses the key")
    create.add_argument(
        "--scope",
        type=_scopes,
        default=list(SCOPES),
        metavar="SCOPES",
        help="read (HTTP reads), stream (the WebSocket stream) or read,stream (default)",
    )
    create.add_argument(
        "--expires",
        type=_expiry,
        metavar="DATE",
        help="the key stops working at this date (00:00 UTC) or ISO time",
    )
    create.add_argument(
        "--rate",
        type=positive_int,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"requests a second allowed (default {DEFAULT_RATE})",
    )
    create.set_defaults(handler=create_key)
    listing = leaf(asub, "list", "list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_keys)
    revoke = leaf(asub, "revoke", "revoke a key at once")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=revoke_key)


def _store(args: argparse.Namespace, db: Database) -> ApiKeyStore:
    return ApiKeyStore(db, Keyring.load_or_create(resolve_data_dir(args.data_dir)))


async def create_key(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        record, text = await _store(args, db).create(
            args.name,
            args.scope,
            expires_at=args.expires,
            rate=args.rate,
            now=datetime.now(UTC),
        )
    print(text)
    expiry = f", expires {record.expires_at:%Y-%m-%d %H:%M} UTC" if record.expires_at else ""
    print(
        f"API key {record.name}: scopes {','.join(record.scopes)}, {record.rate} requests/s"
        f"{expiry}. Shown once: store it now.",
        file=sys.stderr,
    )
    return 0


async def list_keys(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        keys = await _store(args, db).list()
    rows = [{k: v for k, v in dataclasses.asdict(key).items() if k != "key_id"} for key in keys]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no API keys; create one with `quasar apikey create NAME`")
        return 0
    print_table([{**r, "scopes": ",".join(r["scopes"])} for r in rows], _COLUMNS)
    return 0


async def revoke_key(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        await _store(args, db).revoke(args.name)
    print(f"revoked API key {args.name}")
    return 0
