"""`quasar gaps`: every hole in the stored series, judged by each market's calendar."""

from __future__ import annotations

import argparse
import dataclasses

from quasar_tui.cli.common import leaf
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import print_json, print_table
from quasar_tui.quality.holes import find_holes

_COLUMNS = ["series", "interval", "first_missing", "last_missing", "missing", "state", "detail"]


def register(sub: argparse._SubParsersAction) -> None:
    gaps = leaf(
        sub,
        "gaps",
        "holes in the stored series, by trading calendar",
        description="List every hole in the stored bars of SERIES (a common symbol or "
        "PROVIDER:SYMBOL), or of every subscribed series: the first and last missing bar, how "
        "many bars the market's calendar expects there (weekends, holidays and nights are not "
        "holes), and its state: open, filling, failed (with the reason) or unfillable (the "
        "provider had nothing for it).",
    )
    gaps.add_argument("series", metavar="SERIES", nargs="?", help="BTC/USD or PROVIDER:SYMBOL")
    gaps.add_argument("-i", "--interval", metavar="I", help="only this interval")
    gaps.add_argument("--all", action="store_true", help="also list recorded gaps since filled")
    gaps.add_argument("--json", action="store_true", help="print JSON")
    gaps.set_defaults(handler=show_gaps)


async def show_gaps(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        holes = await find_holes(db, args.series, args.interval, include_filled=args.all)
    if args.json:
        print_json([dataclasses.asdict(h) for h in holes])
    elif not holes:
        print("no holes: every bar the calendars expect between the stored ones is there")
    else:
        print_table([dataclasses.asdict(h) for h in holes], _COLUMNS)
    return 0
