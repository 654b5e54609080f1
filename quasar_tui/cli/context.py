"""What a one-shot command needs: the parsed global options and an open database."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from quasar_tui.store.database import Database, open_database
from quasar_tui.store.server import resolve_data_dir, resolve_dsn


@asynccontextmanager
async def database_from_args(args: argparse.Namespace) -> AsyncIterator[Database]:
    """Open (and migrate) the database chosen by `--dsn` / `--data-dir` / environment."""
    db = await open_database(resolve_dsn(args.dsn), resolve_data_dir(args.data_dir), max_size=4)
    try:
        yield db
    finally:
        await db.close()
