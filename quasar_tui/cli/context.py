"""What a one-shot command needs: the parsed global options and an open database."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from quasar_tui.registry.providers import ProviderRegistry
from quasar_tui.registry.secrets import Keyring
from quasar_tui.store.database import Database, open_database
from quasar_tui.store.server import resolve_data_dir, resolve_dsn


@asynccontextmanager
async def database_from_args(
    args: argparse.Namespace, max_size: int = 4
) -> AsyncIterator[Database]:
    """Open (and migrate) the database chosen by `--dsn` / `--data-dir` / environment."""
    db = await open_database(
        resolve_dsn(args.dsn), resolve_data_dir(args.data_dir), max_size=max_size
    )
    try:
        yield db
    finally:
        await db.close()


@asynccontextmanager
async def registry_from_args(args: argparse.Namespace) -> AsyncIterator[ProviderRegistry]:
    """The provider registry on that database, with the master key from the data dir.

    The bundled providers are registered on first use, so `provider list` shows them at once.
    """
    keyring = Keyring.load_or_create(resolve_data_dir(args.data_dir))
    async with database_from_args(args) as db:
        registry = ProviderRegistry(db, keyring)
        await registry.ensure_bundled()
        yield registry
