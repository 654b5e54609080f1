"""Options every subcommand accepts, so `quasar --dsn X provider list` and
`quasar provider list --dsn X` both work."""

from __future__ import annotations

import argparse
from typing import Any

COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument(
    "--dsn",
    default=argparse.SUPPRESS,
    metavar="URL",
    help="PostgreSQL server to use instead of the embedded one (env QUASAR_DSN)",
)
COMMON.add_argument(
    "--data-dir",
    default=argparse.SUPPRESS,
    metavar="DIR",
    help="where the embedded database and the master key live (env QUASAR_DATA_DIR)",
)


def leaf(
    sub: argparse._SubParsersAction, name: str, help: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """Add a subcommand parser that also takes the common options."""
    kwargs.setdefault("description", help[0].upper() + help[1:] + ".")
    return sub.add_parser(name, help=help, parents=[COMMON], **kwargs)


def positive_int(text: str) -> int:
    """argparse type for counts, limits and ids."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, not {value}")
    return value
