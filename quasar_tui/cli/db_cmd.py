"""`quasar db ...`: which server, which version, which migrations."""

from __future__ import annotations

import argparse

from quasar_tui.cli.common import leaf
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import print_json
from quasar_tui.sandbox.confine import isolation


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="database server information")
    db_sub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    info = leaf(
        db_sub,
        "info",
        "server, version, TimescaleDB and applied migrations",
        description="Show which PostgreSQL server Quasar uses, its version, whether "
        "TimescaleDB is on, the migrations applied, and how provider code is isolated.",
    )
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=db_info)


async def db_info(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        info = await db.info()
    if args.json:
        print_json(
            {
                "server": info.server,
                "version": info.version,
                "timescaledb": info.timescaledb,
                "timescaledb_reason": info.timescaledb_reason,
                "pg_trgm": info.pg_trgm,
                "provider_isolation": isolation(),
                "migrations": [
                    {
                        "version": m.version,
                        "name": m.name,
                        "variant": m.variant,
                        "applied_at": m.applied_at,
                    }
                    for m in info.migrations
                ],
            }
        )
        return 0
    print(f"server:      {info.server}")
    print(f"version:     PostgreSQL {info.version}")
    print(f"timescaledb: {info.timescaledb or 'off (plain PostgreSQL tables)'}")
    print(f"             {info.timescaledb_reason}")
    print(f"pg_trgm:     {'on' if info.pg_trgm else 'off'}")
    print(f"providers:   isolation: {isolation()}")
    print("migrations:")
    for m in info.migrations:
        print(f"  {m.version:03d} {m.name:<16} {m.variant:<9} {m.applied_at:%Y-%m-%d %H:%M:%S}")
    return 0
