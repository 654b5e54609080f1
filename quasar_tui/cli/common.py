"""Options every subcommand accepts, so `quasar --dsn X provider list` and
`quasar provider list --dsn X` both work."""

from __future__ import annotations

import argparse

COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument(
    "--dsn", default=argparse.SUPPRESS, metavar="URL",
    help="PostgreSQL server to use instead of the embedded one (env QUASAR_DSN)",
)
COMMON.add_argument(
    "--data-dir", default=argparse.SUPPRESS, metavar="DIR",
    help="where the embedded database and the master key live (env QUASAR_DATA_DIR)",
)


def leaf(sub: argparse._SubParsersAction, name: str, help: str, **kwargs) -> argparse.ArgumentParser:  # noqa: A002
    """Add a subcommand parser that also takes the common options."""
    kwargs.setdefault("description", help[0].upper() + help[1:] + ".")
    return sub.add_parser(name, help=help, parents=[COMMON], **kwargs)
