"""Options every subcommand accepts, so `quasar --dsn X provider list` and
`quasar provider list --dsn X` both work."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from quasar_tui.core.errors import InvalidInputError
from quasar_tui.core.intervals import Interval
from quasar_tui.core.text import printable
from quasar_tui.registry.subscriptions import MAX_LOOKBACK_DAYS


def leaf(
    sub: argparse._SubParsersAction, name: str, summary: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """Add a subcommand parser that also takes the common options."""
    kwargs.setdefault("description", summary[0].upper() + summary[1:] + ".")
    return sub.add_parser(name, help=summary, parents=[COMMON], **kwargs)


INT64_MAX = 2**63 - 1


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """argparse type for a whole number from `low` to `high`, checked at the edge so that no
    later arithmetic or database column overflows."""

    def parse(text: str) -> int:
        shown = printable(text if len(text) <= 40 else text[:40] + "...")
        try:
            value = int(text.strip()) if len(text) <= 40 else None
        except ValueError:
            value = None
        if value is None:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {shown!r}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a number from {low} to {high}, not {shown}")
        return value

    return parse


positive_int = bounded_int(1, INT64_MAX)
"""argparse type for counts, limits and ids (ids are PostgreSQL bigints)."""

lookback_days = bounded_int(1, MAX_LOOKBACK_DAYS)
"""argparse type for days of history: at most a hundred years."""


def min_quality(text: str) -> float:
    """argparse type for a bar quality threshold, 0 to 1, so a bad one is a usage error."""
    shown = printable(text if len(text) <= 40 else text[:40] + "...")
    try:
        value = float(text.strip()) if len(text) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a quality from 0 to 1 (1 keeps unflagged bars only), not {shown!r}"
        )
    return value


def add_min_quality(parser: argparse.ArgumentParser) -> None:
    """`--min-quality Q`, as `quasar bars` and `quasar export` take it."""
    parser.add_argument(
        "--min-quality",
        metavar="Q",
        type=min_quality,
        help="leave out bars whose quality flags score below Q (0 to 1): 1 keeps unflagged "
        "bars only, 0.5 drops inconsistent, non-positive and spiking ones; derived bars are "
        "built from the source bars left",
    )


def interval(text: str) -> Interval:
    """argparse type for a bar interval, so an unknown one is a usage error (exit 2)."""
    try:
        return Interval.parse(text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(printable(str(exc))) from None


def non_empty_path(text: str) -> str:
    """argparse type for --data-dir: an empty value would silently mean the default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty (leave the option out for the default)")
    return text


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
    type=non_empty_path,
    help="where the embedded database and the master key live (env QUASAR_DATA_DIR)",
)
