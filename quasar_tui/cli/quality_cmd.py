"""`quasar quality`: coverage, flagged bars by kind and the worst days, per series."""

from __future__ import annotations

import argparse
import dataclasses

from quasar_tui.cli.common import leaf
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import print_json, print_table
from quasar_tui.quality.report import quality_report

_COLUMNS = ["series", "interval", "calendar", "bars", "missing", "coverage", "flagged", "worst_day"]


def register(sub: argparse._SubParsersAction) -> None:
    quality = leaf(
        sub,
        "quality",
        "coverage and quality flags of the stored series",
        description="For SERIES (a common symbol or PROVIDER:SYMBOL), or every subscribed "
        "series: the share of the bars its market's calendar expects that are stored, the "
        "bars flagged (OHLC inconsistent, non-positive price, spike, zero volume in a session, "
        "repeated bar, off the interval's grid) and the worst days. Flags are found by a pass "
        "over the stored bars, run first; nothing is changed or deleted.",
    )
    quality.add_argument("series", metavar="SERIES", nargs="?", help="BTC/USD or PROVIDER:SYMBOL")
    quality.add_argument(
        "--recheck",
        action="store_true",
        help="check every stored bar again, not only those stored since the last pass (after "
        "bars were changed by hand)",
    )
    quality.add_argument("--json", action="store_true", help="print JSON")
    quality.set_defaults(handler=show_quality)


async def show_quality(args: argparse.Namespace) -> int:
    async with database_from_args(args) as db:
        report = await quality_report(db, args.series, full=args.recheck)
    if args.json:
        print_json([dataclasses.asdict(q) for q in report])
        return 0
    rows = [
        {
            **dataclasses.asdict(q),
            "coverage": f"{q.coverage:.2%}" if q.bars else "no bars yet",
            "flagged": ", ".join(f"{n} {kind}" for kind, n in q.flags.items()) or "-",
            "worst_day": f"{q.worst_days[0].day} ({q.worst_days[0].score:.0%})"
            if q.worst_days
            else "-",
        }
        for q in report
    ]
    print_table(rows, _COLUMNS)
    return 0
