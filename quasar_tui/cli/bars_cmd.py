"""`quasar bars`: a quick look at a series' bars at any interval, through the read layer."""

from __future__ import annotations

import argparse
import dataclasses

from quasar_tui.cli.common import add_min_quality, leaf, positive_int
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.output import print_json, print_table
from quasar_tui.cli.times import bounds, moment
from quasar_tui.core.errors import NotFoundError
from quasar_tui.core.numbers import plain
from quasar_tui.quality.flags import judging_reader
from quasar_tui.store.read import MAX_LIMIT, SOURCES

_COLUMNS = ["ts", "open", "high", "low", "close", "volume", "trades", "complete"]


def register(sub: argparse._SubParsersAction) -> None:
    bars = leaf(
        sub,
        "bars",
        "print a series' bars at any interval",
        description="Print the bars of SERIES, oldest first: a common symbol (BTC/USD), served "
        "by the first provider in its priority order (`quasar map priority`), or "
        "PROVIDER:SYMBOL. An interval that was not collected is derived from the finest "
        "collected one that divides it. Historical and live bars are merged (live wins). "
        "COMPLETE is no for a bar still forming or missing source bars. Times are bar starts "
        "in UTC.",
    )
    bars.add_argument("series", metavar="SERIES", help="BTC/USD or PROVIDER:SYMBOL")
    bars.add_argument(
        "-i",
        "--interval",
        metavar="I",
        required=True,
        help="bar interval: 1min 5min 15min 30min 1h 4h 1d 1w 1M",
    )
    bars.add_argument("--from", dest="start", metavar="D", type=moment, help="first bar (UTC)")
    bars.add_argument("--to", dest="end", metavar="D", type=moment, help="last bar (UTC)")
    bars.add_argument("--provider", metavar="NAME", help="read this provider's series only")
    bars.add_argument(
        "--source", choices=SOURCES, default="both", help="which bars to read (default: both)"
    )
    bars.add_argument(
        "-n",
        "--limit",
        type=positive_int,
        default=50,
        metavar="N",
        help=f"the newest N bars (default 50, at most {MAX_LIMIT:,})",
    )
    bars.add_argument("--json", action="store_true", help="print JSON")
    add_min_quality(bars)
    bars.set_defaults(handler=show_bars)


async def show_bars(args: argparse.Namespace) -> int:
    low, high = bounds(args.start, args.end)
    async with database_from_args(args) as db:
        read = await judging_reader(db).bars(
            args.series,
            args.interval,
            low,
            high,
            provider=args.provider,
            source=args.source,
            limit=args.limit,
            min_quality=args.min_quality,
        )
    if not read.bars:
        raise NotFoundError(
            f"no {read.interval.value} bars of {read.series.key} in that range; see `quasar status`"
        )
    if args.json:
        print_json(
            {
                "series": read.series.key,
                "common": read.series.common,
                "interval": read.interval.value,
                "derived_from": read.source_interval.value if read.derived else None,
                "min_quality": args.min_quality,
                "bars": [dataclasses.asdict(b) for b in read.bars],
            }
        )
        return 0
    derived = f", derived from {read.source_interval.value}" if read.derived else ""
    print(f"{read.series.label} {read.interval.value}{derived}")
    rows = [
        {
            **dataclasses.asdict(b),
            **{k: plain(getattr(b, k)) for k in ("open", "high", "low", "close", "volume")},
        }
        for b in read.bars
    ]
    print_table(rows, _COLUMNS)
    return 0
