"""`quasar assets ...`: refresh a provider's instrument list and search it."""

from __future__ import annotations

import argparse
import dataclasses

from quasar_tui.cli.common import leaf, positive_int
from quasar_tui.cli.context import database_from_args, registry_from_args
from quasar_tui.cli.output import echo, print_json, print_table
from quasar_tui.cli.spinner import waiting
from quasar_tui.registry.assets import AssetStore


def register(sub: argparse._SubParsersAction) -> None:
    assets = sub.add_parser(
        "assets",
        help="the instruments each provider offers",
        description="Refresh a provider's list of instruments and search it.",
    )
    asub = assets.add_subparsers(dest="assets_command", metavar="COMMAND", required=True)

    refresh = leaf(
        asub,
        "refresh",
        "fetch a provider's symbol list and store it",
        description="Call the provider's fetch_available_symbols and store every asset in one "
        "transaction. Assets it no longer lists are kept but marked inactive, so their "
        "mappings and subscriptions stay. If the provider fails, nothing changes.",
    )
    refresh.add_argument("name", metavar="NAME", help="provider name")
    refresh.set_defaults(handler=refresh_assets)

    listing = leaf(
        asub,
        "list",
        "a provider's assets, optionally searched",
        description="List a provider's assets. With --search, the exact symbol comes first, "
        "then symbols starting with Q, then similar symbols and names.",
    )
    listing.add_argument("name", metavar="NAME", help="provider name")
    listing.add_argument("--search", metavar="Q", help="part of a symbol or name")
    listing.add_argument(
        "--unmapped",
        action="store_true",
        help="only active assets not mapped to a common symbol yet",
    )
    listing.add_argument(
        "--limit",
        metavar="N",
        type=positive_int,
        default=200,
        help="show at most N assets (default 200)",
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_assets)


async def refresh_assets(args: argparse.Namespace) -> int:
    async with (
        registry_from_args(args) as registry,
        waiting(f"asking {args.name} for its symbol list"),
    ):
        report = await registry.refresh_assets(args.name)
    echo(
        f"{args.name}: {report.total} assets listed ({report.added} new, "
        f"{report.updated} updated, {report.deactivated} no longer listed)"
    )
    return 0


async def list_assets(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        store = AssetStore(db)
        rows = await store.list(
            args.name, args.search, unmapped_only=args.unmapped, limit=args.limit
        )
        total = await store.count(args.name) if not rows else None
    if args.json:
        print_json([dataclasses.asdict(a) for a in rows])
    elif rows:
        print_table(
            [dataclasses.asdict(a) for a in rows],
            ["symbol", "name", "asset_class", "exchange", "common_symbol", "active"],
        )
    elif total == 0:
        echo(f"{args.name} has no assets yet; run `quasar assets refresh {args.name}`")
    else:
        echo("no assets match")
    return 0
