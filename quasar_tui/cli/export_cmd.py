"""`quasar export`: the bars of one series as CSV, JSON lines (stdout or a file) or Parquet (a
file), through the read layer, so it writes what `quasar bars`, the chart and the Python API
read: any interval (derived when not collected), historical and live merged.

The older form `export NAME SYMBOL [--live]` still reads one table and writes the columns it
always wrote, for scripts that parse them.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from quasar_tui.cli import bar_files
from quasar_tui.cli.common import add_min_quality, interval, leaf
from quasar_tui.cli.context import database_from_args
from quasar_tui.cli.spinner import waiting
from quasar_tui.cli.times import bounds, moment
from quasar_tui.core.errors import NotFoundError, UsageError
from quasar_tui.core.series import SeriesName
from quasar_tui.quality.flags import judging_reader
from quasar_tui.store.read import SOURCES, Source

# What `export NAME SYMBOL` wrote before series names: one table's own columns.
_OLD_COLUMNS = {"historical": bar_files.COLUMNS[:6], "live": bar_files.COLUMNS[:7]}


def register(sub: argparse._SubParsersAction) -> None:
    export = leaf(
        sub,
        "export",
        "write a series' bars as CSV, JSON lines or Parquet",
        usage="%(prog)s SERIES --interval I [options]  (or: NAME SYMBOL --interval I [--live])",
        description="Write the bars of SERIES at one interval, oldest first: a common symbol "
        "(BTC/USD), served by the first provider in its priority order (`quasar map priority`), "
        "or PROVIDER:SYMBOL. An interval that was not collected is derived from the finest "
        "collected one that divides it. Historical and live bars are merged (live wins) unless "
        "--source says otherwise. Columns: ts open high low close volume trades complete "
        "(complete is false for a bar still forming or missing source bars). The older form "
        "NAME SYMBOL writes historical bars (or live ones with --live) in the columns it always "
        "wrote. CSV and JSON lines go to stdout unless -o FILE is given; Parquet needs -o FILE "
        "and pyarrow (pip install quasar-tui[parquet]). Times are bar starts in UTC.",
    )
    export.add_argument("series", metavar="SERIES", help="BTC/USD or PROVIDER:SYMBOL")
    export.add_argument(
        "symbol", metavar="SYMBOL", nargs="?", help="older form: NAME is the provider"
    )
    export.add_argument(
        "-i",
        "--interval",
        metavar="I",
        type=interval,
        required=True,
        help="bar interval: 1min 5min 15min 30min 1h 4h 1d 1w 1M",
    )
    export.add_argument(
        "--from",
        dest="start",
        metavar="D",
        type=moment,
        help="first bar: a date (YYYY-MM-DD) or an ISO time, UTC",
    )
    export.add_argument(
        "--to",
        dest="end",
        metavar="D",
        type=moment,
        help="last bar: up to and including this date, or before this time",
    )
    export.add_argument("--provider", metavar="NAME", help="read this provider's series only")
    export.add_argument(
        "--source",
        choices=SOURCES,
        help="which bars: historical, live, or both merged (default: both; historical in the "
        "older form)",
    )
    export.add_argument("--live", action="store_true", help="same as --source live")
    export.add_argument("--format", choices=bar_files.FORMATS, default="csv", help="default: csv")
    export.add_argument(
        "-o", "--output", metavar="FILE", type=Path, help="write to FILE instead of stdout"
    )
    add_min_quality(export)
    export.set_defaults(handler=export_series)


def _source(args: argparse.Namespace) -> Source:
    if args.live and args.source not in (None, "live"):
        raise UsageError(f"--live and --source {args.source} disagree: give one of them")
    if args.live:
        return "live"
    if args.source is not None:
        return args.source
    return "historical" if args.symbol is not None else "both"


async def export_series(args: argparse.Namespace) -> int:
    low, high = bounds(args.start, args.end)
    source = _source(args)
    if args.format == "parquet":
        if args.output is None:
            raise UsageError("Parquet is binary: give -o FILE (or use --format csv)")
        bar_files.pyarrow_module()
    older = args.symbol is not None
    name = SeriesName(args.symbol, args.series) if older else args.series
    columns = _OLD_COLUMNS.get(source, bar_files.COLUMNS) if older else bar_files.COLUMNS
    async with contextlib.AsyncExitStack() as stack:
        db = await stack.enter_async_context(database_from_args(args))
        async with waiting(f"reading {name} {args.interval.value} bars"):
            stream = await stack.enter_async_context(
                judging_reader(db).stream(
                    name,
                    args.interval,
                    low,
                    high,
                    provider=args.provider,
                    source=source,
                    min_quality=args.min_quality,
                )
            )
            batches = await stack.enter_async_context(contextlib.aclosing(stream.batches))
            first = await anext(batches, None)
        if not first:
            kind = "" if source == "both" else f"{source} "
            raise NotFoundError(
                f"no {kind}{stream.interval.value} bars of {stream.series.key} stored in that "
                "range; see `quasar status`"
            )
        await bar_files.write(args.format, args.output, columns, first, batches)
    return 0
